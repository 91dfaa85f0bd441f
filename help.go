package main

import (
	"fmt"
	"io"
)

// printError prints err after the program's name, each of several errors (every refused
// setting of loadConfig) on a line of its own.
func printError(w io.Writer, err error) {
	if errs, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range errs.Unwrap() {
			fmt.Fprintln(w, "motorpool:", e)
		}
		return
	}
	fmt.Fprintln(w, "motorpool:", err)
}

const usage = `usage: motorpool [serve | migrate | version | healthcheck | help [env | COMMAND] |
                 admin create EMAIL [NAME] |
                 token issue --service NAME [--ttl DURATION] | token revoke (TOKEN | --jti JTI [--ttl DURATION])]
  serve         run the HTTP server (default); migrates the database first
  migrate       apply pending database migrations and exit (as MIGRATE_DATABASE_URL's
                role when it is set, connecting as no other)
  version       print the version
  healthcheck   exit 0 if the server on HTTP_ADDR's port answers GET /healthz with 200, else 1
  admin create  create an admin with the password in ADMIN_PASSWORD, unless a user with
                that email exists (which is left as it is)
  token issue   print a service token (role service: no session, no rate limits) signed
                with the configured key, valid for --ttl (default 720h)
  token revoke  deny a token (given whole, or by its jti for --ttl, default 720h) on every
                instance sharing the Valkey; a revoked token is refused at once
  help          print this; help env: every environment variable, its default and meaning
                (--format=dotenv or --format=markdown: as .env.example or README.md's
                table); help COMMAND, or COMMAND --help: that command's usage
Configuration comes from the environment: see motorpool help env.`

// envHelp closes the usage of the commands that read the configuration.
const envHelp = `Configuration comes from the environment: motorpool help env lists every variable with its
default and meaning (as does .env.example). Bad values stop the command before it starts,
with a line for each, naming the variable and why.`

// commandUsage is each command's own usage: help COMMAND, or COMMAND --help.
var commandUsage = map[string]string{
	"serve": `usage: motorpool [serve]
Runs the HTTP server (the default command), applying pending database migrations first (as
MIGRATE_DATABASE_URL's role when it is set). SIGINT or SIGTERM stops it, after the requests
in flight, for up to SHUTDOWN_TIMEOUT.
` + envHelp,
	"migrate": `usage: motorpool migrate
Applies pending database migrations and exits: as MIGRATE_DATABASE_URL's role when it is
set, connecting as no other.
` + envHelp,
	"version": `usage: motorpool version
Prints the version and the Go release it was built with.`,
	"healthcheck": `usage: motorpool healthcheck
Exits 0 when the server on HTTP_ADDR's port answers GET /healthz with 200 within 2s, else 1
(the container image's HEALTHCHECK: the image has no curl).`,
	"admin": `usage: motorpool admin create EMAIL [NAME]
Creates an admin (named Administrator by default) with the password in ADMIN_PASSWORD,
unless a user with that email exists, which is left as it is.
` + envHelp,
	"token": `usage: motorpool token issue --service NAME [--ttl DURATION]
       motorpool token revoke (TOKEN | --jti JTI [--ttl DURATION])
issue prints a service token (role service: no session, no rate limits) signed with the
configured key, valid for --ttl (default 720h). revoke denies a token, given whole or by its
jti for --ttl (default 720h), on every instance sharing the Valkey.
` + envHelp,
}

// help runs motorpool help [env | COMMAND].
func help(args []string, stdout io.Writer) error {
	switch {
	case len(args) == 0:
		fmt.Fprintln(stdout, usage)
		return nil
	case args[0] == "env":
		return helpEnv(args[1:], stdout)
	case len(args) == 1 && commandUsage[args[0]] != "":
		fmt.Fprintln(stdout, commandUsage[args[0]])
		return nil
	}
	return fmt.Errorf("help: want 'help', 'help env [--format=text|dotenv|markdown]' or 'help COMMAND'\n%s", usage)
}

func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}
