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

func loadEventsConfig(c *config, getenv func(string) string, str func(string, *string), dur func(string, *time.Duration), errs *[]error) {
	c.Events.MaxLag = time.Minute
	str("RABBITMQ_URL", &c.Events.Broker.URL)
	str("RABBITMQ_EXCHANGE", &c.Events.Broker.Exchange)
	dur("RELAY_MAX_LAG", &c.Events.MaxLag)
	if c.Events.Broker.URL != "" {
		if err := c.Events.Broker.Check(); err != nil {
			*errs = append(*errs, &configError{"RABBITMQ_URL", maskURL(c.Events.Broker.URL), err.Error()})
		}
	}
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
