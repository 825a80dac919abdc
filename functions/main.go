// Command palisade is Palisade's custom-handler binary and pipeline CLI.
//
//	palisade serve     answer the Azure Functions host (the default)
//	palisade dev       run the whole pipeline on this machine, playing the host
//	palisade scan | detect | posture   pipeline commands (functions/cli)
//
// Exit codes: 0 success, 1 runtime failure (for the pipeline commands: the
// policy failed), 2 usage or configuration error. --help exits 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/palisade-sec/palisade/functions/cli"
)

// Errors that decide the exit code.
var (
	// errUsage marks command-line mistakes: exit code 2, with the usage.
	errUsage = errors.New("usage")
	// errConfig marks settings that cannot be used: exit code 2.
	errConfig = errors.New("settings")
	// errHelp marks a --help that was answered: exit code 0.
	errHelp = errors.New("help")
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	var err error
	switch name {
	case "serve":
		err = serve(ctx, args, stdout)
	case "dev":
		err = dev(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		printUsage(stdout)
		return 0
	default:
		for _, c := range cli.Commands() {
			if c.Name == name {
				return c.Run(ctx, args, stdout, stderr)
			}
		}
		err = fmt.Errorf("%w: unknown command %q", errUsage, name)
	}
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "palisade:", err)
		printUsage(stderr)
		return 2
	case errors.Is(err, errConfig):
		fmt.Fprintln(stderr, "palisade:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "palisade:", err)
		return 1
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `usage: palisade [command] [flags]

commands:
  serve     answer the Azure Functions host on FUNCTIONS_CUSTOMHANDLER_PORT (default)
  dev       run the pipeline on this machine with no Azure, playing the Functions host
`)
	for _, c := range cli.Commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.Name, c.Summary)
	}
	fmt.Fprint(w, `  help      this text

palisade COMMAND --help describes a command. Exit codes: 0 done, 1 failed
(pipeline commands: the policy failed), 2 bad usage, settings or input.
`)
}
