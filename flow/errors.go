package flow

// DecodeError is the error decoders return for input they cannot use. Its
// Reason is a short constant that becomes the "reason" label of the decode
// error metric; decoders keep one preallocated DecodeError per reason so
// that bad input costs no allocation.
type DecodeError struct {
	// Reason is the metric label, e.g. "truncated", "version".
	Reason string
	// Msg says what is wrong and, where the sender can fix it, how.
	Msg string
}

// Error returns the message.
func (e *DecodeError) Error() string { return e.Msg }
