package annotate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// body is the wire form of a Request: values stay raw so that a bad one
// gets a message naming it rather than a decoder error.
type body struct {
	Token  string                     `json:"tkn"`
	Alert  json.Number                `json:"id"`
	Action json.Number                `json:"aid"`
	Values map[string]json.RawMessage `json:"values"`
}

// ServeHTTP serves POST /api/v1/annotations: the body is
// {"tkn":"..","id":1004,"aid":7,"values":{"key":123,...}}; the answer is
// 200 {"stored":N}, or {"error":"..."} with the status of the Rejection
// (the manual's messages for token, alert and limit problems).
func (a *Annotator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "use POST with a JSON body {\"tkn\":..,\"id\":..,\"aid\":..,\"values\":{\"KEY\":VALUE}}")
		return
	}
	req, err := decodeRequest(http.MaxBytesReader(w, r.Body, a.cfg.MaxRequestBytes))
	if err == nil {
		var n int
		n, err = a.Annotate(r.Context(), req)
		if err == nil {
			writeJSON(w, http.StatusOK, map[string]int{"stored": n})
			return
		}
	}
	var rej *Rejection
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &rej):
		writeError(w, rej.Status, "%s", rej.Message)
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes: send fewer values at once", tooBig.Limit)
	default:
		writeError(w, http.StatusBadRequest, "the body is not a JSON annotation request (%v): send {\"tkn\":\"..\",\"id\":1004,\"aid\":7,\"values\":{\"KEY\":123}}", err)
	}
}

// decodeRequest reads a request body.
func decodeRequest(r io.Reader) (Request, error) {
	var b body
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		return Request{}, err
	}
	if dec.More() {
		return Request{}, errors.New("more than one JSON value")
	}
	req := Request{Token: b.Token, Values: make(map[string]uint64, len(b.Values))}
	for _, f := range []struct {
		name string
		raw  json.Number
		dst  *uint64
	}{{"id", b.Alert, &req.Alert}, {"aid", b.Action, &req.Action}} {
		if f.raw == "" {
			continue // validate names the missing one
		}
		n, err := strconv.ParseUint(f.raw.String(), 10, 64)
		if err != nil {
			return Request{}, invalid("%s %s is not an ID: use the positive integer of the plugin's environment", f.name, f.raw)
		}
		*f.dst = n
	}
	for _, k := range slices.Sorted(maps.Keys(b.Values)) {
		raw := bytes.TrimSpace(b.Values[k])
		text := string(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			text = s // a number written as a string
		}
		v, err := parseValue(k, text)
		if err != nil {
			return Request{}, err
		}
		req.Values[k] = v
	}
	return req, nil
}

// ErrorBody is the body of every error answer of this package's handlers.
type ErrorBody struct {
	// Error says what is wrong; for annotations, the manual's message.
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, ErrorBody{Error: fmt.Sprintf(format, args...)})
}
