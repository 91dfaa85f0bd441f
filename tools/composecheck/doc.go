// Package composecheck holds the tests that validate the repository's docker-compose.yml
// where no Docker engine runs: the file loads with compose-go (the loader of docker compose
// itself, with variable interpolation and schema validation), every long-running service has
// a healthcheck and every dependency waits for it, every environment variable given to a
// motorpool process is one the program reads (.env.example, or until it exists the README's
// Configuration table), and nginx routes each path of the README's "Running the domains
// apart" table to the process the table names.
package composecheck
