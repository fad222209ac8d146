"""inet, cidr <-> ipaddress; macaddr, macaddr8 -> str.

inet: a host address (/32, /128) -> IPv4Address/IPv6Address, with a shorter prefix ->
IPv4Interface/IPv6Interface (address and prefix kept). cidr -> IPv4Network/IPv6Network.
Parameters: addresses and interfaces go as inet, networks as cidr.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oxpg

FAST = settings(max_examples=100, deadline=None)

DECODE = [
    ("'10.0.0.1'::inet", IPv4Address("10.0.0.1")),
    ("'10.0.0.1/32'::inet", IPv4Address("10.0.0.1")),
    ("'10.1.2.3/8'::inet", IPv4Interface("10.1.2.3/8")),
    ("'10.0.0.0/8'::inet", IPv4Interface("10.0.0.0/8")),
    ("'0.0.0.0/0'::inet", IPv4Interface("0.0.0.0/0")),
    ("'255.255.255.255'::inet", IPv4Address("255.255.255.255")),
    ("'::1'::inet", IPv6Address("::1")),
    ("'2001:db8::1/64'::inet", IPv6Interface("2001:db8::1/64")),
    ("'::ffff:1.2.3.4'::inet", IPv6Address("::ffff:1.2.3.4")),
    ("'::/0'::inet", IPv6Interface("::/0")),
    ("'192.168.0.0/16'::cidr", IPv4Network("192.168.0.0/16")),
    ("'10.1.2.3/32'::cidr", IPv4Network("10.1.2.3/32")),
    ("'0.0.0.0/0'::cidr", IPv4Network("0.0.0.0/0")),
    ("'2001:db8::/32'::cidr", IPv6Network("2001:db8::/32")),
    ("'::1/128'::cidr", IPv6Network("::1/128")),
    ("'10.1.2.3/8'::inet::cidr", IPv4Network("10.0.0.0/8")),
    ("'10.0.0.0/8'::cidr::inet", IPv4Interface("10.0.0.0/8")),
]


@pytest.mark.parametrize(("expr", "expected"), DECODE, ids=[e for e, _ in DECODE])
def test_decode(one, expr, expected):
    result = one(f"SELECT {expr} AS v")
    assert type(result) is type(expected)
    assert result == expected


def test_str_of_a_host_address_matches_the_output_function(db):
    # `inet::text` always appends the netmask ('10.0.0.1/32'); the type's output
    # function (format('%s'), psql) does not, and neither does str(IPv4Address).
    (row,) = db.query("SELECT '10.0.0.1'::inet AS v, format('%s', '10.0.0.1'::inet) AS t, "
                      "'10.0.0.1/8'::inet AS w, format('%s', '10.0.0.1/8'::inet) AS u")
    assert str(row["v"]) == row["t"] == "10.0.0.1"
    assert str(row["w"]) == row["u"] == "10.0.0.1/8"


@pytest.mark.parametrize(
    ("value", "pg_type"),
    [(IPv4Address("10.0.0.1"), "inet"), (IPv6Address("::1"), "inet"), (IPv4Interface("10.0.0.1/8"), "inet"),
     (IPv6Interface("2001:db8::5/64"), "inet"), (IPv4Network("10.0.0.0/8"), "cidr"),
     (IPv6Network("2001:db8::/32"), "cidr")],
    ids=str,
)
def test_param(one, value, pg_type):
    assert one("SELECT pg_typeof($1)::text AS v", value) == pg_type
    assert one("SELECT $1 AS v", value) == value
    assert one("SELECT format('%s', $1) AS v", value) == str(value)


@given(st.ip_addresses())
@FAST
def test_address_round_trip(one, address):
    result = one("SELECT $1 AS v", address)
    assert type(result) is type(address) and result == address


@given(st.ip_addresses(), st.integers(0, 128))
@FAST
def test_interface_and_network_round_trip(db, address, prefix):
    prefix = min(prefix, address.max_prefixlen)
    interface = ipaddress.ip_interface((address, prefix))
    network = interface.network
    (row,) = db.query("SELECT $1 AS i, $2 AS n, $1::text AS it, $2::text AS nt", interface, network)
    expected_inet = interface.ip if prefix == address.max_prefixlen else interface
    assert row["i"] == expected_inet and type(row["i"]) is type(expected_inet)
    assert row["n"] == network and type(row["n"]) is type(network)
    # The server's own text for the value means the same (spelling may differ: '::ffff:0:0').
    assert ipaddress.ip_interface(row["it"]) == interface and ipaddress.ip_network(row["nt"]) == network


def test_str_param_into_inet_column(db):
    db.execute("CREATE TEMP TABLE hosts (addr inet, net cidr)")
    try:
        db.execute("INSERT INTO hosts VALUES ($1, $2), ($3, $4)", "10.1.2.3/16", "10.1.0.0/16",
                   IPv4Address("192.168.1.5"), IPv4Network("192.168.0.0/16"))
        rows = db.query("SELECT addr, net FROM hosts ORDER BY addr")
        assert rows == [{"addr": IPv4Interface("10.1.2.3/16"), "net": IPv4Network("10.1.0.0/16")},
                        {"addr": IPv4Address("192.168.1.5"), "net": IPv4Network("192.168.0.0/16")}]
        # Network operators with ipaddress parameters.
        assert db.query("SELECT addr FROM hosts WHERE addr << $1", IPv4Network("192.168.0.0/16")) == [
            {"addr": IPv4Address("192.168.1.5")}]
        assert db.query("SELECT count(*) AS n FROM hosts WHERE net >> $1", IPv4Address("10.1.200.1")) == [{"n": 1}]
        assert db.query("SELECT host(addr) AS h FROM hosts WHERE addr = $1", IPv4Interface("10.1.2.3/16")) == [
            {"h": "10.1.2.3"}]
    finally:
        db.execute("DROP TABLE hosts")


def test_zone_id_is_refused(db):
    # inet has no place for an IPv6 zone ("%eth0"): refuse rather than drop it.
    for value in (IPv6Address("fe80::1%eth0"), IPv6Interface("fe80::1%eth0/64"), IPv6Network("fe80::%eth0/64")):
        with pytest.raises(oxpg.DataError, match=r"\$1.*zone"):
            db.query("SELECT $1 AS v", value)
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_arrays(one):
    assert one("SELECT ARRAY['10.0.0.1'::inet, NULL, '::1/64'] AS v") == [
        IPv4Address("10.0.0.1"), None, IPv6Interface("::1/64")]
    assert one("SELECT ARRAY['10.0.0.0/8'::cidr] AS v") == [IPv4Network("10.0.0.0/8")]
    nets = [IPv4Network("10.0.0.0/8"), IPv6Network("::/0")]
    assert one("SELECT pg_typeof($1)::text AS v", nets) == "cidr[]"
    assert one("SELECT $1 AS v", nets) == nets
    # Networks beside addresses: inet[], where a network is an address with a prefix.
    mixed = [IPv4Network("10.0.0.0/8"), IPv4Address("1.2.3.4")]
    assert one("SELECT pg_typeof($1)::text AS v", mixed) == "inet[]"
    assert one("SELECT $1 AS v", mixed) == [IPv4Interface("10.0.0.0/8"), IPv4Address("1.2.3.4")]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("'08:00:2b:01:02:03'::macaddr", "08:00:2b:01:02:03"), ("'08-00-2B-01-02-03'::macaddr", "08:00:2b:01:02:03"),
     ("'ffffffffffff'::macaddr", "ff:ff:ff:ff:ff:ff"), ("'00:00:00:00:00:00'::macaddr", "00:00:00:00:00:00"),
     ("'08:00:2b:01:02:03:04:05'::macaddr8", "08:00:2b:01:02:03:04:05"),
     ("'08:00:2b:01:02:03'::macaddr8", "08:00:2b:ff:fe:01:02:03"),
     ("'0800.2B01.0203.0405'::macaddr8", "08:00:2b:01:02:03:04:05")],
)
def test_macaddr(db, expr, expected):
    (row,) = db.query(f"SELECT {expr} AS v, ({expr})::text AS t")
    assert row["v"] == row["t"] == expected


def test_macaddr_arrays_and_params(db):
    assert db.query("SELECT ARRAY['08:00:2b:01:02:03'::macaddr, NULL] AS v") == [{"v": ["08:00:2b:01:02:03", None]}]
    assert db.query("SELECT ARRAY['08:00:2b:01:02:03:04:05'::macaddr8] AS v") == [{"v": ["08:00:2b:01:02:03:04:05"]}]
    # A str goes as text for the context to parse: any notation PostgreSQL accepts.
    assert db.query("SELECT $1::macaddr AS v", "08002B010203") == [{"v": "08:00:2b:01:02:03"}]
    assert db.query("SELECT $1::macaddr[] AS v", ["08002B010203"]) == [{"v": ["08:00:2b:01:02:03"]}]


def test_nulls(db):
    assert db.query("SELECT NULL::inet AS a, NULL::cidr AS b, NULL::macaddr AS c, NULL::macaddr8 AS d") == [
        {"a": None, "b": None, "c": None, "d": None}]
