package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/token"
)

// tokenCommand runs `motorpool token issue|revoke ...`.
func tokenCommand(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "issue":
			return issueServiceToken(cfg, args[1:], stdout)
		case "revoke":
			return revokeToken(ctx, cfg, args[1:], stdout)
		}
	}
	return fmt.Errorf("token: want 'token issue --service NAME [--ttl DURATION]' or 'token revoke (TOKEN | --jti JTI [--ttl DURATION])'\n%s", usage)
}

// issueServiceToken prints a long-lived access token with the service role, for internal
// callers. It has no session; `token revoke` or a logout with it denies it.
func issueServiceToken(cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token issue", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("service", "", "the service's name")
	ttl := fs.Duration("ttl", 720*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("token issue: want --service NAME [--ttl DURATION]")
	}
	if *name == "" || *ttl <= 0 || strings.ContainsAny(*name, " \t\n") {
		return fmt.Errorf("token issue: --service needs a name without spaces and --ttl a positive duration")
	}
	key, err := signingKey(cfg)
	if err != nil {
		return err
	}
	iss, err := token.NewIssuer(token.Config{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, AccessTTL: *ttl, RefreshTTL: *ttl, Skew: cfg.Auth.Skew}, key)
	if err != nil {
		return err
	}
	tok, c, err := iss.Issue(0, "service:"+*name, token.RoleService, token.Access, time.Time{})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(os.Stderr, "service token for %s (jti %s), valid until %s\n", *name, c.ID, c.ExpiresAt.Format(time.RFC3339))
	return nil
}

// revokeToken puts a token's jti on the Valkey denylist, which every instance checks on every
// request: for the rest of the token's life (plus the clock skew) when the token is given,
// for --ttl when only its jti is. The denylist of embedded mode lives inside the running
// server, out of this command's reach; there, a logout with the token revokes it.
func revokeToken(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token revoke", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	jti := fs.String("jti", "", "the token's jti (printed by token issue)")
	ttl := fs.Duration("ttl", 720*time.Hour, "with --jti: how long to deny it; at least what is left of the token's life")
	err := fs.Parse(args)
	ttlSet := false
	fs.Visit(func(f *flag.Flag) { ttlSet = ttlSet || f.Name == "ttl" })
	byToken := fs.NArg() == 1
	if err != nil || fs.NArg() > 1 || byToken == (*jti != "") || byToken && ttlSet {
		return fmt.Errorf("token revoke: want TOKEN, or --jti JTI [--ttl DURATION]")
	}
	if cfg.ValkeyAddr == "" {
		return fmt.Errorf("token revoke: needs Valkey (VALKEY_URL or REDIS_HOST): in embedded mode the denylist lives in the running server; revoke there with POST /auth/logout and the token")
	}
	id, until := *jti, time.Now().Add(*ttl)
	if byToken {
		c, err := verifyAnyKey(cfg, fs.Arg(0))
		if err != nil {
			return fmt.Errorf("token revoke: %w", err)
		}
		id, until = c.ID, c.ExpiresAt
	} else if *ttl <= 0 || len(id) > 128 || strings.ContainsAny(id, " \t\n{}") {
		return fmt.Errorf("token revoke: --jti needs a token id (no spaces or braces) and --ttl a positive duration")
	}
	client, err := valkey.Open(ctx, valkeyConfig(cfg, "motorpool-cli"))
	if err != nil {
		return fmt.Errorf("open Valkey at %s: %w", cfg.ValkeyAddr, err)
	}
	defer client.Close()
	if err := valkey.NewAuthState(client).DenyToken(ctx, id, time.Until(until)+cfg.Auth.Skew); err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	fmt.Fprintf(stdout, "revoked token %s until %s\n", id, until.Add(cfg.Auth.Skew).UTC().Format(time.RFC3339))
	return nil
}

// verifyAnyKey verifies an access token with the configured keys, as the server does.
func verifyAnyKey(cfg config, tok string) (token.Claims, error) {
	iss, err := openIssuer(cfg)
	if err != nil {
		return token.Claims{}, err
	}
	c, err := iss.Verify(strings.TrimSpace(tok), token.Access)
	if err != nil {
		return token.Claims{}, fmt.Errorf("the token is not a valid access token for the configured keys (an expired one needs no revoking): %w", err)
	}
	return c, nil
}
