package auth

import (
	"context"
	"time"
)

// FollowEvery is how often, at most, the service reads the store's users
// generation to learn of accounts changed by another process (the
// `flowsentry user` commands): a password changed or a user deleted there
// stops working in a running server within FollowEvery, plus the time of
// the request that notices.
const FollowEvery = time.Second

// follow reads the users generation when the last read is FollowEvery old
// and, when it moved, drops every cached check, session and token. It
// returns the generation the caches now belong to, which the caller hands
// back to keep, so that a check begun before a change is not cached after
// the caches were dropped for it.
func (s *Service) follow(ctx context.Context, now time.Time) uint64 {
	s.mu.Lock()
	gen, due := s.gen, now.Sub(s.genRead) >= FollowEvery || now.Before(s.genRead)
	if due {
		s.genRead = now
	}
	s.mu.Unlock()
	if !due {
		return gen
	}
	cur, err := s.st.UsersGeneration(ctx)
	if err != nil {
		// The credential checks read the same database and fail alike.
		s.log.Warn("reading the users generation", "err", err)
		return gen
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur != s.gen {
		s.gen = cur
		clear(s.basic)
		clear(s.sessions)
		clear(s.tokens)
	}
	return s.gen
}
