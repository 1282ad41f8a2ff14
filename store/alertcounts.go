package store

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/alert"
)

// AlertCount is how many alerts of one policy on one object were active
// in the hour before a time and in the hour before that.
type AlertCount struct {
	// Policy is the policy that raised the alerts.
	Policy uint64
	// Group is the traffic group the alerts are about (the first non-zero
	// of the fields TGRP, TARGET_TG, SERVER_TG, SENDER_TG, SCANNER_TG,
	// CLIENT_TG, RECEIVER_TG); 0 for none.
	Group uint32
	// Exporter and IfIndex are the interface the alerts are about (the
	// fields EXPORTER_ADDR and IFINDEX); invalid and 0 for none.
	Exporter netip.Addr
	IfIndex  uint32
	// LastHour counts the alerts active in (now-1h, now]; PrevHour those
	// active in (now-2h, now-1h]. An alert active in both counts in both.
	LastHour int
	PrevHour int
}

// alertCountsSQL counts the alerts active in the last two hours by policy
// and object. An open alert's latest is not saved at every observation,
// so an open alert counts as active up to now.
var alertCountsSQL = `SELECT policy,
	` + alertGroupSQL("alerts") + `,
	coalesce((SELECT json_extract(f.value, '$.value') FROM json_each(alerts.fields) f
		WHERE json_extract(f.value, '$.name') = 'EXPORTER_ADDR' LIMIT 1), ''),
	coalesce((SELECT CAST(json_extract(f.value, '$.value') AS INTEGER) FROM json_each(alerts.fields) f
		WHERE json_extract(f.value, '$.name') = 'IFINDEX' LIMIT 1), 0),
	sum(ended = 0 OR latest > ?1),
	sum(earliest <= ?1 AND (ended = 0 OR latest > ?2))
	FROM alerts
	WHERE (ended = 0 OR latest > ?2) AND earliest <= ?3
	GROUP BY 1, 2, 3, 4`

// alertGroupSQL is the SQL expression of the traffic group an alert of
// table (a name or alias of alerts) is about, as alert.Alert.Group: the
// first of alert.GroupFields (in the order they were written) that is not
// 0; 0 for none.
func alertGroupSQL(table string) string {
	names := make([]string, len(alert.GroupFields))
	for i, n := range alert.GroupFields {
		names[i] = "'" + n + "'"
	}
	return `coalesce((SELECT CAST(json_extract(f.value, '$.value') AS INTEGER) FROM json_each(` + table + `.fields) f
		WHERE json_extract(f.value, '$.name') IN (` + strings.Join(names, ", ") + `)
		AND json_extract(f.value, '$.value') NOT IN ('', '0') ORDER BY f.key LIMIT 1), 0)`
}

// AlertCounts counts the alerts active in the hour before now and in the
// hour before that, by policy and object (traffic group or interface).
// Objects without an alert in those two hours are left out.
func (s *Store) AlertCounts(ctx context.Context, now time.Time) ([]AlertCount, error) {
	h1, h2 := now.Add(-time.Hour), now.Add(-2*time.Hour)
	rows, err := s.r.QueryContext(ctx, alertCountsSQL, micros(h1), micros(h2), micros(now))
	if err != nil {
		return nil, fmt.Errorf("store: alert counts: %w", err)
	}
	defer rows.Close()
	var out []AlertCount
	for rows.Next() {
		var c AlertCount
		var policy, group, ifIndex int64
		var exporter string
		if err := rows.Scan(&policy, &group, &exporter, &ifIndex, &c.LastHour, &c.PrevHour); err != nil {
			return nil, fmt.Errorf("store: alert counts: %w", err)
		}
		c.Policy, c.Group, c.IfIndex = uint64(policy), uint32(group), uint32(ifIndex)
		if exporter != "" {
			c.Exporter, _ = netip.ParseAddr(exporter) // a field the detectors wrote; invalid stays invalid
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: alert counts: %w", err)
	}
	return out, nil
}
