package auth

import (
	"context"

	"github.com/flowsentry/flowsentry/store"
)

// Audit records e in the audit log, stamping its time; a failure to write
// is logged, not returned, since the change it describes is already made.
func (s *Service) Audit(ctx context.Context, e store.AuditEntry) {
	e.Time = s.now()
	if err := s.st.AddAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("writing the audit log", "user", e.User, "method", e.Method, "path", e.Path, "err", err)
	}
}
