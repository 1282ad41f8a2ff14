package pipeline

import (
	"runtime"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// Config configures the pipeline between the collector and the stages.
type Config struct {
	// Shards is the number of shards, each a goroutine with its own
	// queue and its own part of the rate and detector state (see the
	// package documentation). Zero means one per CPU; at most 64.
	Shards int `yaml:"shards"`
	// QueueLength is the number of batches (of up to flow.BatchSize
	// records) waiting for each shard; when full, the collector waits
	// (its sockets' receive buffers hold what arrives meanwhile), and
	// after 100 ms the shard's part of a batch is dropped and counted.
	// Zero is invalid. A decoded batch takes about 150 KB against about
	// 25 KB for its datagrams in a receive buffer, so bursts are better
	// held there: a long queue only pushes the batches out of the
	// processor's caches before their shard reads them (serve on one
	// core, 3 M records/s offered: 1024 batches made 3.7 M records/s
	// with the threshold families, 32 made 4.1 M).
	QueueLength int `yaml:"queue_length"`
	// TickInterval is how often rates and detectors are evaluated on the
	// wall clock. Zero is invalid.
	TickInterval time.Duration `yaml:"tick_interval"`
	// PollInterval is how often, between ticks, each shard polls its
	// stages that watch for attacks (Poller), so that a flood alerts
	// within a fraction of a second. Zero means never: only ticks.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// DefaultConfig returns one shard per CPU, a queue of 32 batches per
// shard, a one-second tick and a poll every 100 ms.
func DefaultConfig() Config {
	return Config{QueueLength: 32, TickInterval: time.Second, PollInterval: 100 * time.Millisecond}
}

// ShardCount resolves Shards: zero is one per CPU, capped at 64.
func (c Config) ShardCount() int {
	if c.Shards > 0 {
		return c.Shards
	}
	return min(runtime.NumCPU(), maxShards)
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Shards < 0 || c.Shards > maxShards {
		return check.Errorf("shards", "%d is not valid; use 0 (one per CPU) or 1 to %d", c.Shards, maxShards)
	}
	if c.QueueLength <= 0 {
		return check.Errorf("queue_length", "%d is not valid; use a positive number of batches (default 32)", c.QueueLength)
	}
	if c.TickInterval < 10*time.Millisecond || c.TickInterval > time.Minute {
		return check.Errorf("tick_interval", "%s is not valid; use a duration between 10ms and 1m (default 1s)", c.TickInterval)
	}
	if c.PollInterval != 0 && (c.PollInterval < time.Millisecond || c.PollInterval > c.TickInterval) {
		return check.Errorf("poll_interval", "%s is not valid; use 0 (never) or a duration between 1ms and the tick_interval (default 100ms)", c.PollInterval)
	}
	return nil
}
