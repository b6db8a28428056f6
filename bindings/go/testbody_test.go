package h2pool

// testBody reproduces the test server's deterministic bodies
// (tools/server/test_server.h, fill_test_body): byte i is byte i%8, least
// significant first, of splitmix64(splitmix64(seed) + (i/8)*gamma).
const gamma = 0x9e3779b97f4a7c15

func splitmix64(x uint64) uint64 {
	x += gamma
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func testBody(seed uint64, n int) []byte {
	key := splitmix64(seed)
	out := make([]byte, n)
	var v uint64
	for i := range out {
		if i%8 == 0 {
			v = splitmix64(key + uint64(i/8)*gamma)
		}
		out[i] = byte(v >> (8 * (i % 8)))
	}
	return out
}
