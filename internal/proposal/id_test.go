package proposal

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewUUID(t *testing.T) {
	t.Parallel()

	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := newUUID()
		require.True(t, ValidID(id), id)
		require.Equal(t, byte('7'), id[14], "version 7")
		require.Contains(t, "89ab", string(id[19]), "RFC 9562 variant")
		require.False(t, seen[id])
		require.Greater(t, id, prev, "ids made later sort after")
		seen[id], prev = true, id
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()

	require.True(t, ValidID("7c9e6679-7425-40de-944b-e07fc1f90ae7"))
	for _, s := range []string{"", "7C9E6679-7425-40DE-944B-E07FC1F90AE7", "7c9e6679742540de944be07fc1f90ae7",
		"7c9e6679-7425-40de-944b-e07fc1f90ae", "7c9e6679-7425-40de-944b-e07fc1f90ae7x", "7c9e6679_7425-40de-944b-e07fc1f90ae7",
		"gc9e6679-7425-40de-944b-e07fc1f90ae7"} {
		require.False(t, ValidID(s), s)
	}
}

func TestShareToken(t *testing.T) {
	t.Parallel()

	a, b := NewShareToken(), NewShareToken()
	require.Len(t, a, ShareTokenLen)
	require.True(t, ValidShareToken(a))
	require.NotEqual(t, a, b)
	for _, s := range []string{"", "short", a + "x", a[:31] + "-", a[:31] + "/"} {
		require.False(t, ValidShareToken(s), s)
	}
}
