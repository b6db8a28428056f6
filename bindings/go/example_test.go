package h2pool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"h2pool.dev/h2pool"
)

func Example() {
	pool, err := h2pool.New(h2pool.Config{
		MaxConnsPerEndpoint: 4,
		RequestTimeout:      5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := pool.Do(ctx, &h2pool.Request{
		Method: "GET",
		URL:    "http://127.0.0.1:8080/?size=16",
		Header: http.Header{"Accept": {"text/plain"}},
	})
	var h2err *h2pool.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		log.Fatal("too slow: ", err)
	case errors.As(err, &h2err):
		log.Fatalf("failed: code %d, HTTP/2 code %d: %v", h2err.Code, h2err.HTTP2Code, err)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, len(body), "bytes on stream", resp.StreamID)
}

func ExamplePool_RoundTripper() {
	pool, err := h2pool.New(h2pool.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	client := &http.Client{Transport: pool.RoundTripper()}
	resp, err := client.Get("http://127.0.0.1:8080/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Proto, resp.Status)
}
