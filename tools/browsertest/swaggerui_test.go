package browsertest_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// The example VIN of POST /vehicles in openapi.yaml, which Swagger UI puts in the body.
const exampleVIN = "1HGCM82633A004352"

// TestSwaggerUIAsANewUser does in /docs/ what a new user does: register, sign in, paste the
// access token into Authorize with a "Bearer " prefix (which Swagger UI would send as
// "Bearer Bearer …" were it not for api/spec.go's requestInterceptor), then read /auth/me
// and register a vehicle. Every check is on what the page shows.
func TestSwaggerUIAsANewUser(t *testing.T) {
	chromiumPath(t) // skip (or, with CI set, fail) before building anything
	dir := t.TempDir()
	bin := buildMotorpool(t, dir)
	base, serverLog := startMotorpool(t, bin, dir)
	b := newBrowser(t, dir, 90*time.Second, serverLog)

	email := fmt.Sprintf("browser-%d@example.com", time.Now().UnixNano())
	password := "pw-" + rand.Text() // a fresh one each run, well over the 12 characters asked

	b.step("open /docs/", func(ctx context.Context) error {
		return chromedp.Do(ctx,
			chromedp.Navigate(base+"/docs/"),
			chromedp.WaitVisible(chromedp.CSS("#operations-users-createUser")),
		)
	})

	b.step("register with POST /users", func(ctx context.Context) error {
		body, _ := json.Marshal(map[string]string{"email": email, "name": "Browser Test", "password": password})
		res, err := tryItOut(ctx, "#operations-users-createUser", string(body))
		if err != nil {
			return err
		}
		return res.expect(201, email)
	})

	var token string
	b.step("sign in with POST /auth/login", func(ctx context.Context) error {
		body, _ := json.Marshal(map[string]string{"email": email, "password": password})
		res, err := tryItOut(ctx, "#operations-auth-login", string(body))
		if err != nil {
			return err
		}
		if err := res.expect(200, "accessToken"); err != nil {
			return err
		}
		var pair struct {
			AccessToken string `json:"accessToken"`
		}
		if err := json.Unmarshal([]byte(res.body), &pair); err != nil || pair.AccessToken == "" {
			return fmt.Errorf("no accessToken in the response body the page shows (%v):\n%s", err, res.body)
		}
		token = pair.AccessToken
		return nil
	})

	b.step(`authorize with "Bearer <token>" pasted`, func(ctx context.Context) error {
		const modal = ".modal-ux"
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(".auth-wrapper .btn.authorize")),
			chromedp.WaitVisible(chromedp.CSS(modal+" #auth-bearer-value")),
		); err != nil {
			return fmt.Errorf("open the Authorize dialog: %w", err)
		}
		if err := paste(ctx, modal+" #auth-bearer-value", "Bearer "+token); err != nil {
			return fmt.Errorf("paste the token: %w", err)
		}
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(modal+" .auth-btn-wrapper .btn.authorize")),
			// Once authorized, the dialog offers Logout where Authorize was.
			chromedp.WaitVisible(chromedp.CSS(modal+` button[aria-label="Remove authorization"]`)),
		); err != nil {
			return fmt.Errorf("press Authorize in the dialog: %w", err)
		}
		if h, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(modal+" h6"))); err != nil || strings.TrimSpace(h) != "Authorized" {
			return fmt.Errorf("the dialog does not say Authorized (got %q, %v)", h, err)
		}
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(modal+" .btn-done")),
			chromedp.WaitNotPresent(chromedp.CSS(modal)),
			chromedp.WaitVisible(chromedp.CSS(".auth-wrapper .btn.authorize.locked")),
		); err != nil {
			return fmt.Errorf("close the dialog: %w", err)
		}
		return nil
	})

	b.step("GET /auth/me", func(ctx context.Context) error {
		res, err := tryItOut(ctx, "#operations-auth-getMe", "")
		if err != nil {
			return err
		}
		return res.expect(200, email)
	})

	b.step("register a vehicle with POST /vehicles and its example body", func(ctx context.Context) error {
		res, err := tryItOut(ctx, "#operations-vehicles-createVehicle", "")
		if err != nil {
			return err
		}
		return res.expect(201, exampleVIN)
	})
}

// shown is the server response Swagger UI displays under an operation.
type shown struct {
	status int
	body   string
}

func (s shown) expect(status int, bodyHas string) error {
	if s.status != status {
		return fmt.Errorf("the page shows status %d, want %d; response body:\n%s", s.status, status, s.body)
	}
	if !strings.Contains(s.body, bodyHas) {
		return fmt.Errorf("the page's response body lacks %q:\n%s", bodyHas, s.body)
	}
	return nil
}

// tryItOut expands the operation with the element id op, presses "Try it out", replaces the
// request body with body unless body is empty (leaving the example Swagger UI fills in),
// presses Execute and reads the status and body from the live response table.
func tryItOut(ctx context.Context, op, body string) (shown, error) {
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
		chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
		// Pressed, the button turns into Cancel.
		chromedp.WaitVisible(chromedp.CSS(op+" .try-out__btn.cancel")),
	); err != nil {
		return shown{}, fmt.Errorf("expand the operation and press Try it out: %w", err)
	}
	if body != "" {
		field := op + " textarea.body-param__text"
		if err := chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.CSS(field)),
			// Select the example, as a user does before pasting over it.
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).select()`, field)),
		); err != nil {
			return shown{}, fmt.Errorf("select the example request body: %w", err)
		}
		if err := paste(ctx, field, body); err != nil {
			return shown{}, fmt.Errorf("fill in the request body: %w", err)
		}
		if got, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(field))); err != nil || got != body {
			return shown{}, fmt.Errorf("the request body field holds %q (%v), want %q", got, err, body)
		}
	}
	live := op + " .live-responses-table tbody tr.response"
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(op+" .execute")),
		chromedp.WaitVisible(chromedp.CSS(live+" .response-col_status")),
	); err != nil {
		return shown{}, fmt.Errorf("press Execute and wait for the server response: %w", err)
	}
	cell, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(live+" .response-col_status")))
	if err != nil {
		return shown{}, fmt.Errorf("read the response status: %w", err)
	}
	// The cell holds the code, and " Undocumented " below it for a status the spec lacks.
	fields := strings.Fields(cell)
	if len(fields) == 0 {
		return shown{}, fmt.Errorf("the response status cell is empty")
	}
	status, err := strconv.Atoi(fields[0])
	if err != nil {
		return shown{}, fmt.Errorf("the response status cell shows %q, not a status code", cell)
	}
	// The body's <pre>, not the whole box, which has a Download button too.
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(live+" .response-col_description .highlight-code pre")))
	if err != nil {
		return shown{}, fmt.Errorf("read the response body (status %d): %w", status, err)
	}
	return shown{status: status, body: text}, nil
}

// paste focuses the field and inserts text in one go, as a paste from the clipboard does
// (Input.insertText fires the input event React listens to; setting the value would not).
func paste(ctx context.Context, field, text string) error {
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(field))); err != nil {
		return err
	}
	_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
	return err
}
