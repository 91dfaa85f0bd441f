package main

import (
	"time"

	"github.com/motorpool/motorpool/broker"
)

// eventsConfig is where the outbox's events go.
type eventsConfig struct {
	// Broker (RABBITMQ_URL, RABBITMQ_EXCHANGE): the events' RabbitMQ; without a URL they are
	// relayed within the process.
	Broker broker.Config
	// MaxLag (RELAY_MAX_LAG, 1m): /readyz fails while the oldest event waiting in the outbox is
	// older than this (the relay cannot get events out).
	MaxLag time.Duration
}

// rabbitmqURL reads RABBITMQ_URL.
var rabbitmqURL = reader{
	parse: func(c *config, v string) error {
		if err := (broker.Config{URL: v}).Check(); err != nil {
			return err
		}
		c.Events.Broker.URL = v
		return nil
	},
	show: func(c *config) string { return c.Events.Broker.URL },
}

// describeEvents is the events' part of the start-up line.
func (c config) describeEvents() string {
	if c.Events.Broker.URL == "" {
		return "relayed in process"
	}
	ex := c.Events.Broker.Exchange
	if ex == "" {
		ex = broker.DefaultExchange
	}
	return "rabbitmq " + maskURL(c.Events.Broker.URL) + " exchange " + ex
}
