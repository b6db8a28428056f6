module h2pool.dev/h2pool

go 1.19
