#!/usr/bin/env bash
# Makes a local certificate authority and server certificates with the openssl CLI, for
# `make up` (.run/tls/) and the TLS tests (a temp folder). Idempotent per file: an
# existing CA is reused, so clients that trust it keep trusting new server certificates.
#   scripts/tls-certs.sh DIR NAME SERIAL DAYS SAN[,SAN...]
#     writes DIR/ca.pem DIR/ca.key (once) and DIR/NAME.pem DIR/NAME.key, e.g.
#     scripts/tls-certs.sh .run/tls server 1 825 DNS:localhost,IP:127.0.0.1
# DAYS 0 makes a certificate that is already expired (notAfter = now).
set -euo pipefail
dir="$1" name="$2" serial="$3" days="$4" sans="$5"
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 -subj "/CN=sluice local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi
first="${sans%%,*}"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=${first#*:}" 2>/dev/null
ext="$dir/$name.ext"
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
  "$sans" >"$ext"
if [ "$days" = 0 ]; then
  # openssl x509 counts -days from now; a certificate valid for no time at all is expired
  # a second later.
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -set_serial "$serial" -days 0 -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
else
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -set_serial "$serial" -days "$days" -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
fi
rm -f "$dir/$name.csr" "$ext"
chmod 644 "$dir/ca.pem" "$dir/$name.pem"
