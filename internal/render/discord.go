package render

// Discord: an execute-webhook message with one embed. Discord's documented limits
// (https://discord.com/developers/docs/resources/message#embed-object-embed-limits): content 2,000
// characters, title 256, description 4,096, 25 fields of name 256 and value 1,024, and 6,000 for all
// of an embed's texts together. "allowed_mentions": {"parse": []} means no mention in the message
// pings anyone, so a client called "@everyone" is only text. Content, description and field values
// are Markdown: each Markdown character in a value is escaped with a backslash, so a name cannot
// become a masked link, a heading, a spoiler or a mention. Titles and field names are plain text.

const (
	discordContentMax     = 2000
	discordTitleMax       = 256
	discordDescriptionMax = 4096
	discordFieldNameMax   = 256
	discordFieldValueMax  = 1024
	discordEmbedTotalMax  = 6000

	// discordContentLinkMax is the longest link also written into content: a longer one would crowd
	// out the sentence (the embed's url still carries it).
	discordContentLinkMax = 500
)

type discordBody struct {
	Content         string          `json:"content"`
	Embeds          []discordEmbed  `json:"embeds"`
	AllowedMentions discordMentions `json:"allowed_mentions"`
}

type discordMentions struct {
	Parse []string `json:"parse"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	URL         string         `json:"url,omitempty"`
	Description string         `json:"description"`
	Fields      []discordField `json:"fields"`
	Timestamp   string         `json:"timestamp"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// discordMarkdown holds the characters that start Markdown, mentions, links, emoji or headings in
// Discord; ':' is among them so that "https://…" in a name is not turned into a link.
const discordMarkdown = "\\*_~`|<>[]#-+@:"

// discordEscapes maps each character of discordMarkdown to its escape.
var discordEscapes = func() (t [128]string) {
	for _, c := range []byte(discordMarkdown) {
		t[c] = "\\" + string(c)
	}
	return t
}()

func discordEscape(r rune) string {
	if r < 0x80 {
		return discordEscapes[r]
	}
	return ""
}

func discordMessage(m *message) discordBody {
	content := m.sentence
	if m.link != "" && len(m.link) <= discordContentLinkMax {
		// <…> around a link keeps Discord from adding a preview of it; the embed links it already.
		content = append(content[:len(content):len(content)], rawPart("\n<"+m.link+">"))
	}
	e := discordEmbed{
		Title:     compose(discordTitleMax, nil, m.title...),
		URL:       m.link,
		Fields:    []discordField{},
		Timestamp: m.at.Format(TimeFormat),
	}
	total := units(e.Title)
	for _, f := range m.facts {
		df := discordField{Name: f.name, Value: compose(discordFieldValueMax, discordEscape, userPart(orDash(f.value))), Inline: true}
		total += units(df.Name) + units(df.Value)
		e.Fields = append(e.Fields, df)
	}
	description := m.sentence
	if m.long != nil {
		description = append(description[:len(description):len(description)],
			rawPart("\n\n**"), litPart(m.long.name), rawPart("**\n"), userPart(m.long.value))
	}
	e.Description = compose(min(discordDescriptionMax, discordEmbedTotalMax-total), discordEscape, description...)
	return discordBody{
		Content:         compose(discordContentMax, discordEscape, content...),
		Embeds:          []discordEmbed{e},
		AllowedMentions: discordMentions{Parse: []string{}},
	}
}
