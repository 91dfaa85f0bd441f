// Command client is an example of the Go client (package client): it registers an account
// unless it exists, signs in, lists the caller's vehicles page by page, waiting out a 429,
// and shows a problem+json error. It imports nothing of the server.
//
//	go run ./examples/client -url http://localhost:8080 -email ada@example.com
//
// The password is read from MOTORPOOL_PASSWORD ("correct horse battery" when unset).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/motorpool/motorpool/client"
)

func main() {
	url := flag.String("url", "http://localhost:8080", "the service's base URL")
	email := flag.String("email", "ada@example.com", "the account's email")
	flag.Parse()
	password := os.Getenv("MOTORPOOL_PASSWORD")
	if password == "" {
		password = "correct horse battery"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *url, *email, password); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, email, password string) error {
	anon, err := client.NewClientWithResponses(url)
	if err != nil {
		return err
	}
	reg, err := anon.CreateUserWithResponse(ctx, client.UserCreate{Email: client.Email(email), Name: "Ada Lovelace", Password: password})
	if err != nil {
		return err
	}
	if reg.StatusCode() != http.StatusCreated && reg.StatusCode() != http.StatusConflict {
		return problem("register", reg.HTTPResponse, reg.ApplicationproblemJSON400)
	}
	login, err := anon.LoginWithResponse(ctx, client.LoginRequest{Email: client.Email(email), Password: password})
	if err != nil {
		return err
	}
	if login.JSON200 == nil {
		return problem("sign in", login.HTTPResponse, login.ApplicationproblemJSON401)
	}
	fmt.Printf("signed in as %s; the token expires in %ds\n", email, login.JSON200.ExpiresIn)

	// Every request from here on carries the access token.
	c, err := client.NewClientWithResponses(url, client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+login.JSON200.AccessToken)
		return nil
	}))
	if err != nil {
		return err
	}
	me, err := c.GetMeWithResponse(ctx)
	if err != nil || me.JSON200 == nil {
		return errors.Join(err, fmt.Errorf("GET /auth/me: %s", me.Status()))
	}
	params := &client.ListVehiclesParams{UserId: &me.JSON200.User.Id}
	for n := 0; ; {
		page, err := c.ListVehiclesWithResponse(ctx, params)
		if err != nil {
			return err
		}
		if page.StatusCode() == http.StatusTooManyRequests {
			wait, _ := strconv.Atoi(page.HTTPResponse.Header.Get("Retry-After"))
			fmt.Printf("rate limited; waiting %ds\n", wait)
			select {
			case <-time.After(time.Duration(max(wait, 1)) * time.Second):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if page.JSON200 == nil {
			return problem("list vehicles", page.HTTPResponse, page.ApplicationproblemJSON400)
		}
		for _, v := range page.JSON200.Items {
			n++
			fmt.Printf("vehicle %d: %d %s %s (%s)\n", v.Id, v.Year, v.Make, v.Model, v.LicensePlate)
		}
		if page.JSON200.NextCursor == nil {
			fmt.Printf("%d vehicles\n", n)
			break
		}
		params.Cursor = page.JSON200.NextCursor
	}

	// A problem+json answer: a vehicle that does not exist.
	missing, err := c.GetVehicleWithResponse(ctx, 1<<53-1, nil)
	if err != nil {
		return err
	}
	if missing.ApplicationproblemJSON404 != nil {
		fmt.Printf("as expected, %s: %s\n", missing.Status(), describe(*missing.ApplicationproblemJSON404))
	}
	return nil
}

// problem is an error for an answer that was not the one hoped for, in the problem's words.
func problem(what string, resp *http.Response, p *client.Problem) error {
	if p == nil {
		return fmt.Errorf("%s: %s", what, resp.Status)
	}
	return fmt.Errorf("%s: %s: %s", what, resp.Status, describe(*p))
}

func describe(p client.Problem) string {
	s := p.Title
	if p.Detail != nil {
		s = *p.Detail
	}
	if p.Errors != nil {
		for _, e := range *p.Errors {
			s += fmt.Sprintf("; %s: %s", e.Field, e.Message)
		}
	}
	return s
}
