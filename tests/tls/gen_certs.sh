#!/usr/bin/env bash
# Generates the certificates the TLS tests use, with the openssl command, at
# test time (no key is ever committed):
#
#   gen_certs.sh OUTDIR
#
# All keys are EC P-256 (fast). OUTDIR receives, each as NAME.pem + NAME.key:
#   ca             the test CA (trusted by the tests via --cacert / ca_file)
#   untrusted-ca   a second CA that nothing trusts
#   localhost      signed by ca; SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   expired        signed by ca; SAN as localhost; valid 2020-01-01..2021-01-01
#   wronghost      signed by ca; SAN DNS:wrong.example only
#   iponly         signed by ca; SAN IP:127.0.0.1 only
#   selfsigned     self-signed leaf; SAN as localhost
#   untrusted      signed by untrusted-ca; SAN as localhost
#   client         signed by ca; clientAuth, CN h2pool-test-client
# and client-mismatch.key, a key that does not belong to client.pem.
# Every signed certificate is checked with `openssl verify` before exit.
set -euo pipefail

OUT=${1:?usage: gen_certs.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-certs.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

SAN_LOCAL='subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'

cat >"$TMP/ext.cnf" <<'CNF'
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

genkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$OUT/$1.key" 2>/dev/null
  chmod 644 "$OUT/$1.key" # servers that drop privileges must read it
}

# make_ca NAME CN
make_ca() {
  genkey "$1"
  openssl req -x509 -new -key "$OUT/$1.key" -subj "/CN=$2" -days 3650 \
    -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' \
    -out "$OUT/$1.pem"
}

# sign NAME CA SECTION SAN CN: a new key and a certificate for it signed by
# CA, valid from now for 825 days.
sign() {
  local name=$1 ca=$2 section=$3 san=$4 cn=$5
  genkey "$name"
  openssl req -new -key "$OUT/$name.key" -subj "/CN=$cn" \
    -out "$TMP/$name.csr"
  # Each certificate gets its own section: SECTION's lines plus its SAN.
  {
    printf '[leaf]\n'
    sed -n "/^\[$section\]/,/^\$/p" "$TMP/ext.cnf" | sed '1d;/^$/d'
    [[ -n $san ]] && printf '%s\n' "$san"
  } >"$TMP/$name.cnf"
  openssl x509 -req -in "$TMP/$name.csr" -CA "$OUT/$ca.pem" \
    -CAkey "$OUT/$ca.key" -set_serial "0x$(openssl rand -hex 8)" -days 825 \
    -extfile "$TMP/$name.cnf" -extensions leaf -out "$OUT/$name.pem" 2>/dev/null
}

make_ca ca "h2pool test CA"
make_ca untrusted-ca "h2pool untrusted test CA"

sign localhost ca server_ext "$SAN_LOCAL" localhost
sign wronghost ca server_ext 'subjectAltName=DNS:wrong.example' wrong.example
sign iponly ca server_ext 'subjectAltName=IP:127.0.0.1' 127.0.0.1
sign untrusted untrusted-ca server_ext "$SAN_LOCAL" localhost
sign client ca client_ext '' h2pool-test-client

# Self-signed leaf (not a CA) for localhost.
genkey selfsigned
openssl req -x509 -new -key "$OUT/selfsigned.key" -subj "/CN=localhost" \
  -days 825 -addext "$SAN_LOCAL" -addext 'basicConstraints=critical,CA:FALSE' \
  -addext 'extendedKeyUsage=serverAuth' -out "$OUT/selfsigned.pem"

# Expired: x509 -days cannot go into the past, so sign with a minimal
# `openssl ca` setup that takes explicit start and end dates.
genkey expired
openssl req -new -key "$OUT/expired.key" -subj "/CN=localhost" \
  -out "$TMP/expired.csr"
mkdir -p "$TMP/ca-db"
: >"$TMP/ca-db/index.txt"
openssl rand -hex 8 >"$TMP/ca-db/serial"
cat >"$TMP/ca.cnf" <<CNF
[ca]
default_ca = test_ca
[test_ca]
dir = $TMP/ca-db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $OUT/ca.pem
private_key = $OUT/ca.key
default_md = sha256
policy = any_policy
unique_subject = no
copy_extensions = none
x509_extensions = expired_ext
[any_policy]
commonName = supplied
[expired_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
$SAN_LOCAL
CNF
openssl ca -batch -notext -config "$TMP/ca.cnf" -in "$TMP/expired.csr" \
  -startdate 20200101000000Z -enddate 20210101000000Z \
  -out "$OUT/expired.pem" 2>/dev/null

# A key that does not match client.pem (for the TLS_CONFIG test).
genkey client-mismatch

# Sanity checks: the good ones verify, the bad ones fail for their reason.
for n in localhost wronghost iponly client; do
  openssl verify -CAfile "$OUT/ca.pem" "$OUT/$n.pem" >/dev/null
done
openssl verify -CAfile "$OUT/untrusted-ca.pem" "$OUT/untrusted.pem" >/dev/null
openssl verify -CAfile "$OUT/ca.pem" -verify_hostname localhost \
  "$OUT/localhost.pem" >/dev/null
openssl verify -CAfile "$OUT/ca.pem" -verify_ip 127.0.0.1 \
  "$OUT/localhost.pem" >/dev/null
if openssl verify -CAfile "$OUT/ca.pem" "$OUT/expired.pem" >/dev/null 2>&1; then
  echo "gen_certs.sh: expired.pem unexpectedly verifies" >&2
  exit 1
fi
if openssl verify -CAfile "$OUT/ca.pem" -verify_hostname localhost \
  "$OUT/wronghost.pem" >/dev/null 2>&1; then
  echo "gen_certs.sh: wronghost.pem unexpectedly verifies for localhost" >&2
  exit 1
fi
echo "gen_certs.sh: certificates written to $OUT"
