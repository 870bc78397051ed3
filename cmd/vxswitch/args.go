package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves every flag in args next to the command that defines it,
// so that "vxswitch attach web api --netns api" parses like
// "vxswitch attach --netns api web api". urfave/cli v2 stops reading flags
// at the first positional argument; the documented usage puts them after.
func interspersed(app *cli.App, args []string) []string {
	type level struct {
		name  string
		flags []cli.Flag
		got   []string
	}
	levels := []*level{{name: args[0], flags: app.Flags}}
	subs := app.Commands
	var pos []string
	for i := 1; i < len(args); i++ {
		t := args[i]
		if t == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if strings.HasPrefix(t, "-") && t != "-" {
			name, _, hasValue := strings.Cut(strings.TrimLeft(t, "-"), "=")
			lv, f := levels[len(levels)-1], cli.Flag(nil)
			for j := len(levels) - 1; j >= 0 && f == nil; j-- {
				if f = findFlag(levels[j].flags, name); f != nil {
					lv = levels[j]
				}
			}
			lv.got = append(lv.got, t)
			if _, isBool := f.(*cli.BoolFlag); f != nil && !isBool && !hasValue && i+1 < len(args) {
				i++
				lv.got = append(lv.got, args[i])
			}
			continue
		}
		if len(pos) == 0 {
			if c := findCommand(subs, t); c != nil {
				levels = append(levels, &level{name: t, flags: c.Flags})
				subs = c.Subcommands
				continue
			}
		}
		pos = append(pos, t)
	}
	var out []string
	for _, lv := range levels {
		out = append(out, lv.name)
		out = append(out, lv.got...)
	}
	return append(out, pos...)
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
