package alertindex

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxNoteLen is the longest note text, in characters.
const MaxNoteLen = 4000

// Note is a remark a user wrote on an alert.
type Note struct {
	// ID is the note's ID, unique in the database.
	ID uint64 `json:"id"`
	// Alert is the ID of the alert the note is about.
	Alert uint64 `json:"-"`
	// User is the name of the user who wrote it.
	User string `json:"user"`
	// Time is when it was written.
	Time time.Time `json:"time"`
	// Text is what the user wrote.
	Text string `json:"text"`
	// Tags are the @tags of Text, lower-cased, each once, in order of
	// first appearance.
	Tags []string `json:"tags"`
}

// NoteError is the error of a note text out of bounds.
type NoteError struct{ Len int }

func (e *NoteError) Error() string {
	return fmt.Sprintf("the note text has %d characters: write 1 to %d", e.Len, MaxNoteLen)
}

// CheckNote returns a *NoteError when text is empty (or blank) or longer
// than MaxNoteLen characters.
func CheckNote(text string) error {
	n := utf8.RuneCountInString(text)
	if strings.TrimSpace(text) == "" || n > MaxNoteLen {
		return &NoteError{Len: n}
	}
	return nil
}

// Tags returns the @tags of text: "@" followed by letters, digits, "-" or
// "_", lower-cased, each once, in order of first appearance. An "@"
// inside a word (an e-mail address) starts no tag.
func Tags(text string) []string {
	tags := []string{}
	isTagRune := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' }
	prev := ' '
	for i, r := range text {
		if r == '@' && !isTagRune(prev) {
			end := i + 1
			for end < len(text) {
				c, size := utf8.DecodeRuneInString(text[end:])
				if !isTagRune(c) {
					break
				}
				end += size
			}
			if end > i+1 {
				tag := strings.ToLower(text[i:end])
				if !slices.Contains(tags, tag) {
					tags = append(tags, tag)
				}
			}
		}
		prev = r
	}
	return tags
}
