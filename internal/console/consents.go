package console

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/consent"
)

// Profiles walks a tenant's subjects (the store).
type Profiles interface {
	EachProfile(ctx context.Context, t custos.TenantID, after custos.SubjectID, fn func(custos.StoredProfile) (bool, error)) error
}

// consentReportLimit bounds the subjects one consent page reads.
const consentReportLimit = 20000

type consentTotal struct {
	Purpose, Channel             string
	Granted, Withdrawn, NoRecord int
}

type consentReport struct {
	Days      int
	Subjects  int
	Truncated bool
	Totals    []consentTotal
	Grants    lineChart
	Withdraws lineChart
	Ranges    []int
}

// consentsPage counts, over the tenant's subjects, the grants and
// withdrawals per purpose and channel per day (two server-drawn charts)
// and the current state of each pair.
func (h *Handler) consentsPage(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Profiles == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node shows no consent report"))
		return
	}
	days := 30
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 366 {
			h.fail(w, u, custos.Errorf(custos.Invalid, "days must be a number from 1 to 366"))
			return
		}
		days = n
	}
	ctx := r.Context()
	today := h.d.Now().UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(days - 1))
	type pair struct{ purpose, channel string }
	var pairs []pair
	for _, p := range u.t.Settings.EffectivePurposes() {
		for _, ch := range custos.Channels {
			pairs = append(pairs, pair{p.Name, ch})
		}
	}
	index := map[pair]int{}
	for i, p := range pairs {
		index[p] = i
	}
	grants, withdraws := make([][]int, len(pairs)), make([][]int, len(pairs))
	for i := range pairs {
		grants[i], withdraws[i] = make([]int, days), make([]int, days)
	}
	totals := make([]consentTotal, len(pairs))
	d := consentReport{Days: days, Ranges: []int{7, 30, 90, 365}}
	err := h.d.Profiles.EachProfile(ctx, u.t.ID, custos.SubjectID{}, func(sp custos.StoredProfile) (bool, error) {
		if d.Subjects == consentReportLimit {
			d.Truncated = true
			return false, nil
		}
		d.Subjects++
		hist, err := h.d.Consents.History(ctx, u.t.ID, sp.Subject)
		if custos.ErrorCode(err) == custos.NotFound {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		for _, rec := range hist {
			day := int(rec.Time.UTC().Truncate(24*time.Hour).Sub(first) / (24 * time.Hour))
			if day < 0 || day >= days {
				continue
			}
			chans := []string{rec.Channel}
			if rec.Channel == "" {
				chans = custos.Channels // a record for every channel
			}
			for _, ch := range chans {
				i, ok := index[pair{rec.Purpose, ch}]
				if !ok {
					continue
				}
				if rec.Granted {
					grants[i][day]++
				} else {
					withdraws[i][day]++
				}
			}
		}
		st := consent.NewState(hist)
		for i, p := range pairs {
			rec, ok := st.Decision(p.purpose, p.channel)
			switch {
			case !ok:
				totals[i].NoRecord++
			case rec.Granted:
				totals[i].Granted++
			default:
				totals[i].Withdrawn++
			}
		}
		return true, nil
	})
	if err != nil {
		h.fail(w, u, err)
		return
	}
	// The charts show the pairs that have any record; the totals table
	// every pair with a record, or the purpose's email row.
	var names, labels []string
	var gs, ws [][]int
	for d := range days {
		labels = append(labels, first.AddDate(0, 0, d).Format("01-02"))
	}
	for i, p := range pairs {
		totals[i].Purpose, totals[i].Channel = p.purpose, p.channel
		any := totals[i].Granted+totals[i].Withdrawn > 0
		for _, v := range grants[i] {
			any = any || v > 0
		}
		for _, v := range withdraws[i] {
			any = any || v > 0
		}
		if any {
			names = append(names, p.purpose+" × "+p.channel)
			gs, ws = append(gs, grants[i]), append(ws, withdraws[i])
			d.Totals = append(d.Totals, totals[i])
		}
	}
	d.Grants = newLineChart("Grants per day, by purpose × channel", names, labels, gs)
	d.Withdraws = newLineChart("Withdrawals per day, by purpose × channel", names, labels, ws)
	if err := h.record(ctx, u.t.ID, audit.Entry{Actor: u.actor(), Action: "consent.report.read",
		Details: map[string]any{"days": days, "subjects": d.Subjects}}); err != nil {
		h.fail(w, u, err)
		return
	}
	h.render(w, http.StatusOK, "consents", u.page("Consent", d))
}
