// gobench drives one load through one Go client and prints one JSON line
// with its CPU time and peak RSS, so that bench/bindings.sh can run each
// client in a process of its own and compare them. Any other binding's
// client joins the table by printing the same line (see bench/README.md).
//
//	gobench -client nethttp|do|rt -url URL -n N -c G
//	gobench -client do -upload BYTES -url URL
//	gobench -client do -download BYTES -url URL
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"h2pool.dev/h2pool"
)

type result struct {
	Client       string  `json:"client"`
	Scenario     string  `json:"scenario"`
	Requests     int64   `json:"requests"`
	Failed       int64   `json:"failed"`
	Bytes        int64   `json:"bytes"`
	WallS        float64 `json:"wall_s"`
	CPUS         float64 `json:"cpu_s"`
	CPUUsPerReq  float64 `json:"cpu_us_per_req"`
	PeakRSSKiB   int64   `json:"peak_rss_kib"`
	// Go heap allocations per request (0 for clients not written in Go).
	AllocsPerReq     float64 `json:"allocs_per_req"`
	AllocBytesPerReq float64 `json:"alloc_bytes_per_req"`
	FirstFailure string  `json:"first_failure,omitempty"`
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func peakRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss
}

func main() {
	client := flag.String("client", "do", "nethttp, do (Pool.Do) or rt (http.Client over Pool.RoundTripper)")
	target := flag.String("url", "", "URL to GET (or to upload to / download from)")
	n := flag.Int64("n", 50000, "requests")
	c := flag.Int("c", 400, "goroutines")
	upload := flag.Int64("upload", 0, "stream this many bytes up in one request instead")
	download := flag.Int64("download", 0, "read this many bytes down in one request instead")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured part to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile to this file at the end")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "gobench: -url is required")
		os.Exit(2)
	}

	var pool *h2pool.Pool
	var hc *http.Client
	switch *client {
	case "nethttp":
		hc = &http.Client{Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 100,
		}}
	case "do", "rt":
		var err error
		pool, err = h2pool.New(h2pool.Config{Insecure: true, LogLevel: h2pool.LogError,
			Logger: func(h2pool.LogLevel, string) {}})
		if err != nil {
			fmt.Fprintln(os.Stderr, "gobench:", err)
			os.Exit(1)
		}
		defer pool.Close()
		if *client == "rt" {
			hc = &http.Client{Transport: pool.RoundTripper()}
		}
	default:
		fmt.Fprintln(os.Stderr, "gobench: unknown -client", *client)
		os.Exit(2)
	}

	res := result{Client: *client}
	var failed, moved int64
	var firstErr atomic.Value
	fail := func(err error) {
		atomic.AddInt64(&failed, 1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	// get runs one GET and returns the body length.
	get := func(ctx context.Context) {
		var body io.ReadCloser
		var status int
		if hc != nil {
			resp, err := hc.Get(*target)
			if err != nil {
				fail(err)
				return
			}
			body, status = resp.Body, resp.StatusCode
		} else {
			resp, err := pool.Do(ctx, &h2pool.Request{URL: *target})
			if err != nil {
				fail(err)
				return
			}
			body, status = resp.Body, resp.StatusCode
		}
		k, err := io.Copy(io.Discard, body)
		body.Close()
		if err != nil || status != 200 {
			fail(fmt.Errorf("status %d, %v", status, err))
			return
		}
		atomic.AddInt64(&moved, k)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gobench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 1 // every allocation, for exact counts
	}
	var mem0 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := cpuSeconds()
	start := time.Now()
	ctx := context.Background()
	switch {
	case *upload > 0:
		res.Scenario = "upload"
		res.Requests = 1
		resp, err := pool.Do(ctx, &h2pool.Request{Method: "PUT", URL: *target,
			BodyReader: io.LimitReader(zeros{}, *upload), ContentLength: *upload})
		if err != nil {
			fail(err)
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-Body-Length"); got != strconv.FormatInt(*upload, 10) {
			fail(fmt.Errorf("server received %q bytes", got))
		}
		moved = *upload
	case *download > 0:
		res.Scenario = "download"
		res.Requests = 1
		resp, err := pool.Do(ctx, &h2pool.Request{URL: *target})
		if err != nil {
			fail(err)
			break
		}
		moved, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || moved != *download {
			fail(fmt.Errorf("read %d bytes, %v", moved, err))
		}
	default:
		res.Scenario = "get"
		res.Requests = *n
		var next int64
		var wg sync.WaitGroup
		for g := 0; g < *c; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for atomic.AddInt64(&next, 1) <= *n {
					get(ctx)
				}
			}()
		}
		wg.Wait()
	}
	res.WallS = time.Since(start).Seconds()
	res.CPUS = cpuSeconds() - cpu0
	res.CPUUsPerReq = res.CPUS * 1e6 / float64(res.Requests)
	res.Failed = failed
	res.Bytes = moved
	res.PeakRSSKiB = peakRSS()
	var mem1 runtime.MemStats
	runtime.ReadMemStats(&mem1)
	res.AllocsPerReq = float64(mem1.Mallocs-mem0.Mallocs) / float64(res.Requests)
	res.AllocBytesPerReq = float64(mem1.TotalAlloc-mem0.TotalAlloc) / float64(res.Requests)
	if *memProfile != "" {
		if f, err := os.Create(*memProfile); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	if v := firstErr.Load(); v != nil {
		res.FirstFailure = v.(string)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	if failed > 0 {
		os.Exit(1)
	}
}
