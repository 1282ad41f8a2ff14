package auth

import "github.com/prometheus/client_golang/prometheus"

// Reason is why a request was refused: the reason label of
// flowsentry_auth_failures_total.
type Reason string

// The reasons.
const (
	// ReasonBadCredentials is an unknown user or a wrong password.
	ReasonBadCredentials Reason = "bad_credentials"
	// ReasonBadToken is an unknown or revoked API token.
	ReasonBadToken Reason = "bad_token"
	// ReasonExpired is an expired session or token.
	ReasonExpired Reason = "expired"
	// ReasonLocked is an attempt refused by the throttle.
	ReasonLocked Reason = "locked"
	// ReasonCSRF is a session request without the right X-CSRF-Token.
	ReasonCSRF Reason = "csrf"
)

type metrics struct {
	failures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{failures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowsentry_auth_failures_total",
		Help: "Requests refused for their credentials, by reason.",
	}, []string{"reason"})}
	for _, r := range []Reason{ReasonBadCredentials, ReasonBadToken, ReasonExpired, ReasonLocked, ReasonCSRF} {
		m.failures.WithLabelValues(string(r))
	}
	if reg != nil {
		if err := reg.Register(m.failures); err != nil {
			return nil, err
		}
	}
	return m, nil
}
