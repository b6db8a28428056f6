module h2pool.dev/bench

go 1.19

require h2pool.dev/h2pool v0.0.0

replace h2pool.dev/h2pool => ../../bindings/go
