package flow

import "sync"

// BatchSize is the number of records a collector worker gathers before it
// hands a batch to the pipeline.
const BatchSize = 512

// Batch carries records and interface counters from one producer (a
// collector worker, the replay reader) to the pipeline. A batch belongs to
// one goroutine at a time: the producer fills it and passes it on, the
// consumer calls Release when done. Batches are the unit that later
// crosses process boundaries (NATS, Kafka), so they hold only values.
type Batch struct {
	// Records are the decoded flow records.
	Records []Record
	// Counters are sFlow interface counter samples.
	Counters []IfCounters
}

var batchPool = sync.Pool{New: func() any {
	return &Batch{Records: make([]Record, 0, BatchSize), Counters: make([]IfCounters, 0, 16)}
}}

// NewBatch returns an empty batch from a pool.
func NewBatch() *Batch {
	return batchPool.Get().(*Batch)
}

// Release resets the batch and returns it to the pool. The caller must not
// use it afterwards.
func (b *Batch) Release() {
	b.Records = b.Records[:0]
	b.Counters = b.Counters[:0]
	batchPool.Put(b)
}
