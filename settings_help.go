package main

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// helpEnv runs `motorpool help env [--format=text|dotenv|markdown]`: the table of settings for
// a terminal, as .env.example, or as README.md's configuration table (`make generate` writes
// the last two).
func helpEnv(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("help env", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	format := fs.String("format", "text", "text, dotenv or markdown")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("help env: want [--format=text|dotenv|markdown]")
	}
	switch *format {
	case "text":
		_, err := io.WriteString(stdout, settingsText())
		return err
	case "dotenv":
		_, err := io.WriteString(stdout, settingsDotenv())
		return err
	case "markdown":
		_, err := io.WriteString(stdout, settingsMarkdown())
		return err
	}
	return fmt.Errorf("help env: --format is text, dotenv or markdown, not %q", *format)
}

// label is a setting's secret flag as the renderings print it.
func (s secrecy) label() string {
	switch s {
	case secretInURL:
		return "its password"
	case secret:
		return "yes"
	}
	return ""
}

var mdLink = regexp.MustCompile(`\[([^\]]+)\]\([^)]*\)`)

// plain is markdown as text: no code quotes, links as their text.
func plain(md string) string {
	return strings.ReplaceAll(mdLink.ReplaceAllString(md, "$1"), "`", "")
}

// defaultText is the setting's default as plain text.
func (s setting) defaultText() string {
	switch {
	case s.shown != "":
		return plain(s.shown)
	case s.def != "":
		return s.def
	}
	return "(unset)"
}

// wrap breaks text into lines of at most width, between words.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// settingsText is the table for a terminal: a line of name, secret flag and default per
// variable, its meaning indented below.
func settingsText() string {
	nameW, flagW := len("VARIABLE"), len("SECRET")
	for _, s := range settings {
		nameW, flagW = max(nameW, len(s.name)), max(flagW, len(s.secret.label()))
	}
	var b strings.Builder
	row := func(name, flag, def string) {
		fmt.Fprintf(&b, "%-*s  %-*s  %s\n", nameW, name, flagW, flag, def)
	}
	b.WriteString("Every variable motorpool reads from the environment. serve refuses bad values, a line\n" +
		"for each, and prints the settings in effect when it starts, secrets masked: a SECRET\n" +
		"marked yes is never printed, a URL marked its password is printed without it.\n\n")
	row("VARIABLE", "SECRET", "DEFAULT")
	for _, s := range settings {
		row(s.name, s.secret.label(), s.defaultText())
		for _, line := range wrap(plain(s.meaning), 88) {
			b.WriteString("    " + line + "\n")
		}
	}
	return b.String()
}

// envLine is the line of a variable in .env.example, set or commented out; other tools find
// the variables by it, so no other line may match.
var envLine = regexp.MustCompile(`^#? ?([A-Z][A-Z0-9_]*)=`)

// settingsDotenv is .env.example: each variable's meaning as comments, then NAME=default, or
// `# NAME=` when it has no default value.
func settingsDotenv() string {
	var b strings.Builder
	comment := func(text string) {
		for _, line := range wrap(text, 88) {
			if envLine.MatchString(line) {
				line = " " + line // a comment must not read as a variable's line
			}
			b.WriteString("# " + line + "\n")
		}
	}
	comment("motorpool's environment: every variable it reads, with its default. Generated from the table of settings (settings_table*.go) by `make generate`; `motorpool help env` prints it too. A line NAME=value holds the default, so this file as it is changes nothing; a variable without a default value is commented out.")
	for _, s := range settings {
		b.WriteString("\n")
		meaning := plain(s.meaning)
		switch s.secret {
		case secret:
			meaning += " (secret: never printed)"
		case secretInURL:
			meaning += " (its password is never printed)"
		}
		comment(meaning)
		if s.def != "" {
			b.WriteString(s.name + "=" + s.def + "\n")
			continue
		}
		if s.shown != "" {
			comment("default: " + plain(s.shown))
		}
		b.WriteString("# " + s.name + "=\n")
	}
	return b.String()
}

// settingsMarkdown is README.md's configuration table.
func settingsMarkdown() string {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var b strings.Builder
	b.WriteString("| variable | default | secret | meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := "(unset)"
		switch {
		case s.shown != "":
			def = s.shown
		case s.def != "":
			def = "`" + s.def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.name, cell(def), s.secret.label(), cell(s.meaning))
	}
	return b.String()
}
