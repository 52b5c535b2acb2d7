#!/usr/bin/env python3
"""Generates the scale test for bench/scale.sh: a zone of RECORDS records (90% A,
10% TXT) and a config with POOLS pools of 4 members each, plus the pool `flip` whose
one member is TCP-checked on 127.0.0.1:5399 (bench/scale.sh makes it go down).
Usage: scale.py DIR RECORDS POOLS"""
import sys

out, records, pools = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n_txt = records // 10
n_a = records - n_txt
with open(f"{out}/big.zone", "w") as z:
    z.write("$ORIGIN big.test.\n$TTL 300\n")
    z.write("@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n")
    for i in range(n_a):
        z.write(f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
    for i in range(n_txt):
        z.write(f"t{i} IN TXT \"record {i} of the scale test\"\n")
with open(f"{out}/lbdns.toml", "w") as c:
    c.write('[dns]\nlisten = ["127.0.0.1:5305"]\nthreads = 1\n')
    c.write('[admin]\nlisten = "127.0.0.1:8099"\nstate_dir = "state"\n')
    c.write('[[zone]]\norigin = "big.test."\nfile = "big.zone"\n')
    for p in range(pools):
        c.write(f'[[pool]]\nname = "p{p}.big.test."\n')
        for m in range(4):
            c.write(f'[[pool.member]]\naddress = "172.{16 + (p >> 16 & 15)}.{p >> 8 & 255}.{(p & 255)}"\n'
                    if m == 0 else f'[[pool.member]]\naddress = "198.{18 + m}.{p >> 8 & 255}.{p & 255}"\n')
    # The one probed pool: its member's health flips when the listener stops.
    c.write('[[pool]]\nname = "flip.big.test."\n[[pool.member]]\naddress = "127.0.0.1"\n')
    c.write('[pool.health]\ncheck = "tcp"\nport = 5399\ninterval = "200ms"\ntimeout = "200ms"\nrise = 1\nfall = 1\n')
