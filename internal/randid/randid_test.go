package randid

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewIsTimeOrdered(t *testing.T) {
	t.Parallel()

	start := time.Now().UnixMilli()
	a := New("evt_")
	require.Len(t, a, len("evt_")+24)
	require.True(t, strings.HasPrefix(a, "evt_"))
	for _, c := range a[4:] {
		require.Contains(t, base62, string(c))
	}
	for time.Now().UnixMilli() <= start+1 { // the time part has millisecond resolution
	}
	b := New("evt_")
	require.Less(t, a, b, "an id made later sorts after")
	require.NotEqual(t, New("evt_"), New("evt_"))
}

func TestBase62(t *testing.T) {
	t.Parallel()

	counts := map[rune]int{}
	for range 1000 {
		s := Base62(62)
		require.Len(t, s, 62)
		for _, c := range s {
			counts[c]++
		}
	}
	require.Len(t, counts, 62, "every character appears")
}
