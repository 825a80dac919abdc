package funchost

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a six-field NCRONTAB expression as the timer trigger takes it:
// {second} {minute} {hour} {day} {month} {day-of-week}.
type Schedule struct {
	fields [6]map[int]bool
	expr   string
}

var cronRanges = [6][2]int{{0, 59}, {0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 6}}

var monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
var dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// ParseSchedule parses an NCRONTAB expression ("0 */5 * * * *").
func ParseSchedule(expr string) (Schedule, error) {
	parts := strings.Fields(expr)
	if len(parts) != 6 {
		return Schedule{}, fmt.Errorf("schedule %q: want six fields {second} {minute} {hour} {day} {month} {day-of-week}", expr)
	}
	s := Schedule{expr: expr}
	for i, p := range parts {
		set, err := parseCronField(p, cronRanges[i][0], cronRanges[i][1], i)
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule %q field %d: %w", expr, i+1, err)
		}
		s.fields[i] = set
	}
	return s, nil
}

func parseCronField(f string, lo, hi, idx int) (map[int]bool, error) {
	set := map[int]bool{}
	for _, item := range strings.Split(f, ",") {
		step := 1
		if base, st, ok := strings.Cut(item, "/"); ok {
			n, err := strconv.Atoi(st)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("bad step %q", st)
			}
			item, step = base, n
		}
		from, to := lo, hi
		if item != "*" {
			a, b, isRange := strings.Cut(item, "-")
			var err error
			if from, err = cronValue(a, idx); err != nil {
				return nil, err
			}
			to = from
			if isRange {
				if to, err = cronValue(b, idx); err != nil {
					return nil, err
				}
			} else if step > 1 {
				to = hi
			}
		}
		if from < lo || to > hi || from > to {
			return nil, fmt.Errorf("%q is outside %d-%d", item, lo, hi)
		}
		for v := from; v <= to; v += step {
			set[v] = true
		}
	}
	return set, nil
}

func cronValue(s string, idx int) (int, error) {
	names := map[int]map[string]int{4: monthNames, 5: dayNames}[idx]
	if v, ok := names[strings.ToLower(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

// Next returns the first time after t that matches the schedule.
func (s Schedule) Next(t time.Time) time.Time {
	t = t.Truncate(time.Second).Add(time.Second)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		switch {
		case !s.fields[4][int(t.Month())]:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, t.Location())
		case !s.fields[3][t.Day()] || !s.fields[5][int(t.Weekday())]:
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
		case !s.fields[2][t.Hour()]:
			t = t.Truncate(time.Hour).Add(time.Hour)
		case !s.fields[1][t.Minute()]:
			t = t.Truncate(time.Minute).Add(time.Minute)
		case !s.fields[0][t.Second()]:
			t = t.Add(time.Second)
		default:
			return t
		}
	}
	return time.Time{}
}

// String returns the expression.
func (s Schedule) String() string { return s.expr }
