package apiserverbench

import "time"

// pace hands out rate jobs a second for d, each to whichever of the
// workers (one per client) is free, and returns once every job handed out
// is done: how many were handed out, the most any job started behind its
// time, and the time from the first job to the end of the last. Jobs stop
// being handed out at d even if the workers fell behind the pace.
func pace[C any](clients []C, rate int, d time.Duration, do func(c C)) (sent int, maxLag, elapsed time.Duration) {
	jobs := make(chan struct{})
	done := make(chan struct{})
	for _, cs := range clients {
		go func() {
			defer func() { done <- struct{}{} }()
			for range jobs {
				do(cs)
			}
		}()
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	end := start.Add(d)
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		if !time.Now().Before(end) {
			break // behind the pace: the run is over, sent or not
		}
		jobs <- struct{}{}
		sent++
		maxLag = max(maxLag, time.Since(at))
	}
	close(jobs)
	for range clients {
		<-done
	}
	return sent, maxLag, time.Since(start)
}
