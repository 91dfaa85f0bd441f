// Package client is a Go client of the motorpool API, generated from openapi.yaml by
// oapi-codegen: the models and a client with typed responses. It depends on net/http and the
// generator's small runtime only, not on the server.
//
//	c, err := client.NewClientWithResponses("http://localhost:8080")
//	resp, err := c.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: email, Password: pw})
//
// See examples/ for a whole program.
package client

//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config cfg.yaml ../openapi.yaml
