#!/bin/sh
# Makes the test certificate authorities and server certificates used by the HTTPS tests
# (xtask/src/tests/net.rs). Run once; the results are committed. Valid for 20 years.
set -eu
cd "$(dirname "$0")"
gen_ca() { # name
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7300 \
        -subj "/CN=Keel test CA $1" -keyout "$1-ca.key" -out "$1-ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
gen_ca keel
gen_ca other
# The server Keel reaches as https://host:PORT or https://10.0.2.100:PORT.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=host" \
    -keyout server.key -out server.csr
printf 'subjectAltName=DNS:host,IP:10.0.2.100\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA keel-ca.pem -CAkey keel-ca.key -CAcreateserial -days 7300 \
    -extfile server.ext -out server.pem
rm -f server.csr server.ext keel-ca.srl
