// Command palisade-deploy is the Go half of `make images` and
// infra/deploy.sh: it builds Palisade's container images without a Docker
// daemon, pushes them to the deployment's registry, and writes each
// cluster's Helm values from the Terraform outputs.
//
//	palisade-deploy images   [-out dist/images] [-version V] [-revision R] [-source URL]
//	palisade-deploy push     -registry HOST [-prefix palisade] [-insecure] FILE.tar...
//	palisade-deploy output   -outputs outputs.json NAME
//	palisade-deploy clusters -outputs outputs.json
//	palisade-deploy values   -outputs outputs.json -out DIR [-images dist/images] [-sensor-image REF] [-agent-image REF]
//
// outputs.json is what `tofu output -json` prints for
// infra/terraform/examples/main.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/palisade-sec/palisade/shared/logging"
)

// errUsage marks a command line that cannot be run; main exits 2 on it.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "palisade-deploy:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "palisade-deploy:", err)
		os.Exit(1)
	}
}

// run dispatches one subcommand. Results go to stdout (for the calling
// script), progress to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: palisade-deploy images|push|output|clusters|values [flags]", errUsage)
	}
	log := logging.New(stderr, "info", true)
	fs := flag.NewFlagSet("palisade-deploy "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch args[0] {
	case "images":
		opts := buildOptions{Log: log}
		fs.StringVar(&opts.Root, "root", ".", "module root, where `go build` runs")
		fs.StringVar(&opts.Out, "out", "dist/images", "directory receiving one NAME.tar (OCI image layout) per image")
		fs.StringVar(&opts.Version, "version", "dev", "image version (label org.opencontainers.image.version, and the tag it is pushed with)")
		fs.StringVar(&opts.Revision, "revision", "", "source revision (label org.opencontainers.image.revision)")
		fs.StringVar(&opts.Source, "source", defaultSource, "source repository URL (label org.opencontainers.image.source)")
		fs.StringVar(&opts.Go, "go", "go", "go command")
		if err := parse(fs, args[1:], 0); err != nil {
			return err
		}
		created, err := sourceDate(getenv("SOURCE_DATE_EPOCH"))
		if err != nil {
			return err
		}
		opts.Created = created
		return buildAll(ctx, opts, stdout)
	case "push":
		opts := pushOptions{Log: log}
		fs.StringVar(&opts.Registry, "registry", "", "registry login server (e.g. NAME.azurecr.io)")
		fs.StringVar(&opts.Prefix, "prefix", defaultPrefix, "repository prefix in the registry")
		fs.BoolVar(&opts.Insecure, "insecure", false, "reach the registry over plain HTTP (a local test registry)")
		if err := parse(fs, args[1:], -1); err != nil {
			return err
		}
		if opts.Registry == "" {
			return fmt.Errorf("%w: push needs -registry", errUsage)
		}
		opts.Files = fs.Args()
		opts.Keychain = registryKeychain(opts.Registry)
		return pushAll(ctx, opts, stdout)
	case "output":
		outputs := fs.String("outputs", "", "`tofu output -json` file")
		if err := parse(fs, args[1:], 1); err != nil {
			return err
		}
		o, err := readOutputs(*outputs)
		if err != nil {
			return err
		}
		v, err := o.str(fs.Arg(0))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, v)
		return err
	case "clusters", "values":
		opts := valuesOptions{}
		outputs := fs.String("outputs", "", "`tofu output -json` file")
		if args[0] == "values" {
			fs.StringVar(&opts.Out, "out", "", "directory receiving one values file per cluster")
			fs.StringVar(&opts.ImagesDir, "images", "dist/images", "directory of the images built by `make images`")
			fs.StringVar(&opts.Prefix, "prefix", defaultPrefix, "repository prefix the images are pushed under")
			fs.StringVar(&opts.SensorImage, "sensor-image", getenv("PALISADE_SENSOR_IMAGE"), "sensor image (REPO:TAG or REPO@sha256:…) instead of the one built and pushed")
			fs.StringVar(&opts.AgentImage, "agent-image", getenv("PALISADE_AGENT_IMAGE"), "agent image (REPO:TAG or REPO@sha256:…) instead of the one built and pushed")
		}
		if err := parse(fs, args[1:], 0); err != nil {
			return err
		}
		o, err := readOutputs(*outputs)
		if err != nil {
			return err
		}
		if args[0] == "clusters" {
			cs, err := o.clusters()
			if err != nil {
				return err
			}
			return writeClusters(stdout, cs)
		}
		if opts.Out == "" {
			return fmt.Errorf("%w: values needs -out", errUsage)
		}
		return writeValues(o, opts, stdout)
	}
	return fmt.Errorf("%w: unknown command %q (images, push, output, clusters, values)", errUsage, args[0])
}

// parse parses flags and checks the number of arguments left (-1: at
// least one).
func parse(fs *flag.FlagSet, args []string, n int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case n < 0 && fs.NArg() == 0:
		return fmt.Errorf("%w: %s needs at least one argument", errUsage, fs.Name())
	case n >= 0 && fs.NArg() != n:
		return fmt.Errorf("%w: %s takes %d argument(s), got %q", errUsage, fs.Name(), n, fs.Args())
	}
	return nil
}
