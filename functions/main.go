// Command palisade is Palisade's custom-handler binary.
//
//	palisade serve   answer the Azure Functions host (the default)
//	palisade dev     run the whole pipeline on this machine, playing the host
//
// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error;
// subcommands with a policy (scan) document their own.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks command-line mistakes (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args)
	case "dev":
		err = dev(ctx, args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		if sub, ok := subcommands()[cmd]; ok {
			return sub(ctx, args)
		}
		err = fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "palisade:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			return 2
		}
		return 1
	}
	return 0
}

const usage = `usage: palisade [command] [flags]

commands:
  serve     answer the Azure Functions host on FUNCTIONS_CUSTOMHANDLER_PORT (default)
  dev       run the pipeline on this machine with no Azure, playing the Functions host
  scan      scan an image (registry or docker-save/OCI archive) for vulnerabilities, for pipelines
  posture   assess Kubernetes manifests (and an ARM cluster JSON) offline, for pipelines
  detect    run the detection rules over a file of sensor envelopes, Falco JSON or AKS audit records
  help      this text
`
