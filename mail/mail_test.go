package mail_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/mail"
)

// fakeSMTP accepts one plain-text SMTP conversation and returns what it was given.
type fakeSMTP struct {
	addr string
	got  chan string // "from|to|data"
}

func startFakeSMTP(t *testing.T) *fakeSMTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f := &fakeSMTP{addr: l.Addr().String(), got: make(chan string, 1)}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tp := textproto.NewConn(c)
		_ = tp.PrintfLine("220 fake ESMTP")
		var from, to string
		for {
			line, err := tp.ReadLine()
			if err != nil {
				return
			}
			verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
			switch verb {
			case "EHLO", "HELO":
				_ = tp.PrintfLine("250-fake\r\n250 8BITMIME")
			case "MAIL":
				from = line
				_ = tp.PrintfLine("250 ok")
			case "RCPT":
				to = line
				_ = tp.PrintfLine("250 ok")
			case "DATA":
				_ = tp.PrintfLine("354 go on")
				data, err := tp.ReadDotBytes()
				if err != nil {
					return
				}
				_ = tp.PrintfLine("250 queued")
				f.got <- from + "|" + to + "|" + string(data)
			case "QUIT":
				_ = tp.PrintfLine("221 bye")
				return
			default:
				_ = tp.PrintfLine("250 ok")
			}
		}
	}()
	return f
}

func TestSMTPMailerSendsResetLink(t *testing.T) {
	f := startFakeSMTP(t)
	host, port, _ := net.SplitHostPort(f.addr)
	p, _ := strconv.Atoi(port)
	m, err := mail.NewSMTPMailer(mail.SMTPConfig{Host: host, Port: p, From: "noreply@motorpool.test", TLS: "none", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	link := "https://motorpool.test/reset-password?token=abc123"
	if err := m.SendPasswordReset(context.Background(), "ada@example.com", link); err != nil {
		t.Fatal(err)
	}
	got := <-f.got
	// The body is quoted-printable; decode it as a mail client would.
	if head, body, ok := strings.Cut(got, "\n\n"); ok {
		decoded, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		got = head + "\n\n" + string(decoded)
	}
	for _, want := range []string{"noreply@motorpool.test", "ada@example.com", link, "Subject: Reset your Motorpool password"} {
		if !strings.Contains(got, want) {
			t.Errorf("mail lacks %q:\n%s", want, got)
		}
	}
}

func TestSMTPConfigErrors(t *testing.T) {
	for _, cfg := range []mail.SMTPConfig{
		{From: "a@example.com"},
		{Host: "smtp.example.com"},
		{Host: "smtp.example.com", From: "not an address"},
		{Host: "smtp.example.com", From: "a@example.com", TLS: "ssl3"},
	} {
		if _, err := mail.NewSMTPMailer(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// With STARTTLS mandatory (the default), a server that does not offer it gets no mail.
func TestSMTPMailerRequiresTLSByDefault(t *testing.T) {
	f := startFakeSMTP(t)
	host, port, _ := net.SplitHostPort(f.addr)
	p, _ := strconv.Atoi(port)
	m, err := mail.NewSMTPMailer(mail.SMTPConfig{Host: host, Port: p, From: "noreply@motorpool.test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SendPasswordReset(context.Background(), "ada@example.com", "https://x/reset"); err == nil {
		t.Fatal("sent over a connection without TLS")
	}
	select {
	case got := <-f.got:
		t.Fatalf("the server received a mail in clear text:\n%s", got)
	default:
	}
}

func TestLogMailer(t *testing.T) {
	var buf bytes.Buffer
	m := mail.LogMailer{Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	if err := m.SendPasswordReset(context.Background(), "ada@example.com", "http://localhost:8080/reset-password?token=t"); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	if !sc.Scan() || !strings.Contains(sc.Text(), "token=t") || !strings.Contains(sc.Text(), "ada@example.com") {
		t.Errorf("log mailer wrote %q", buf.String())
	}
}
