//! Where the notifier may send: the one rule for a channel's address, checked
//! twice, on the literal address when the channel's Secret is read (its Ready
//! condition) and on every resolved IP when a message is sent ([`super::http`]),
//! because a public name can point at a metadata service at any time.
//!
//! - `https` everywhere; plain `http` only to loopback (`127.0.0.0/8`, `::1`,
//!   `localhost`), where nothing crosses a network.
//! - Never link-local or cloud metadata addresses (`169.254.0.0/16`, `fe80::/10`,
//!   `fd00:ec2::254`, `metadata.google.internal`, ...), the unspecified address
//!   (`0.0.0.0` reaches the host itself), multicast or broadcast: a webhook has
//!   no business there, and a channel is otherwise a request forger inside the
//!   operator's network.
//! - Private ranges (`10/8`, `172.16/12`, `192.168/16`, `100.64/10`, `fc00::/7`)
//!   only when the operator runs with `--notify-allow-private-destinations`
//!   (an in-cluster receiver, a bridge in the same VPC).
//!
//! IPv4 written inside IPv6 (`::ffff:a.b.c.d`, `::a.b.c.d`, `64:ff9b::a.b.c.d`)
//! is judged as the IPv4 address it carries. Pure: no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// Host names of cloud metadata services (lower case, no trailing dot).
const METADATA_NAMES: [&str; 5] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Metadata addresses outside the link-local ranges (refused even with private
/// destinations allowed): AWS's IPv6 endpoint, Alibaba Cloud's.
const METADATA_IPS: [IpAddr; 2] = [
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
];

/// Why an address is refused. Each kind has its condition reason
/// ([`Refusal::reason`]); the message names the address and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// Not an `http(s)` URL with a host.
    #[error("the address is not an http(s) URL with a host")]
    NotAUrl,
    /// Plain `http` to anything but loopback.
    #[error("plain http is allowed only to loopback (127.0.0.0/8, ::1, localhost); {host} needs https")]
    PlainHttp {
        /// The host (or the address it resolved to).
        host: String,
    },
    /// A link-local or cloud metadata address, or a name of a metadata service.
    #[error("{host} is a link-local or cloud metadata address: never a notification destination")]
    Metadata {
        /// The host or address.
        host: String,
    },
    /// An address nothing should be sent to (unspecified, multicast, broadcast, reserved).
    #[error("{host} is not a unicast destination address")]
    NotUnicast {
        /// The address.
        host: String,
    },
    /// A private address while private destinations are not allowed.
    #[error(
        "{host} is a private address; the operator sends to private ranges only with \
         --notify-allow-private-destinations"
    )]
    Private {
        /// The address.
        host: String,
    },
}

impl Refusal {
    /// The CamelCase reason of the channel's Ready condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotAUrl => "InvalidAddress",
            Refusal::PlainHttp { .. } => "InsecureAddress",
            Refusal::Metadata { .. } | Refusal::NotUnicast { .. } => "ForbiddenAddress",
            Refusal::Private { .. } => "PrivateAddress",
        }
    }
}

/// What kind of address an IP is, for this rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// Link-local or a metadata service.
    Metadata,
    /// Unspecified, multicast, broadcast, reserved.
    NotUnicast,
    /// Private, shared (CGNAT) or unique-local.
    Private,
    /// Everything else.
    Public,
}

/// The IPv4 address an IPv6 address carries (mapped, compatible, NAT64), if any.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // ::a.b.c.d (deprecated "compatible"), but not :: and ::1 themselves.
    if s[..6].iter().all(|x| *x == 0) && !(s[6] == 0 && s[7] <= 1) {
        return Some(v4);
    }
    // 64:ff9b::/96, the well-known NAT64 prefix.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
        return Some(v4);
    }
    None
}

fn class_v4(ip: Ipv4Addr) -> Class {
    let o = ip.octets();
    if METADATA_IPS.contains(&IpAddr::V4(ip)) || ip.is_link_local() {
        Class::Metadata
    } else if ip.is_loopback() {
        Class::Loopback
    } else if o[0] == 0 || ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Class::NotUnicast
    } else if ip.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
        Class::Private
    } else {
        Class::Public
    }
}

/// The class of an IP address.
pub fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => class_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return class_v4(v4);
            }
            let s = v6.segments();
            if METADATA_IPS.contains(&ip) || (s[0] & 0xffc0) == 0xfe80 {
                Class::Metadata
            } else if v6.is_loopback() {
                Class::Loopback
            } else if v6.is_unspecified() || v6.is_multicast() {
                Class::NotUnicast
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Class::Private
            } else {
                Class::Public
            }
        }
    }
}

/// The host of a URL as the notifier judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP literal.
    Ip(IpAddr),
    /// A name (lower case, no trailing dot).
    Name(String),
}

impl Host {
    /// The host of `uri`'s authority (brackets of an IPv6 literal removed).
    pub fn of(uri: &http::Uri) -> Option<Host> {
        let host = uri.host()?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        Some(match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(bare.trim_end_matches('.').to_ascii_lowercase()),
        })
    }
}

/// The rule, with the operator's setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Destinations {
    /// `--notify-allow-private-destinations`.
    pub allow_private: bool,
}

impl Destinations {
    /// Checks an address as written: scheme, and the host if it is an IP literal
    /// or a known name. A name that passes is checked again, IP by IP, when it
    /// is resolved ([`Destinations::check_ip`]).
    pub fn check_url(&self, address: &str) -> Result<(), Refusal> {
        let uri: http::Uri = address.trim().parse().map_err(|_| Refusal::NotAUrl)?;
        let plain = match uri.scheme_str() {
            Some("https") => false,
            Some("http") => true,
            _ => return Err(Refusal::NotAUrl),
        };
        match Host::of(&uri).ok_or(Refusal::NotAUrl)? {
            Host::Ip(ip) => self.check_ip(ip, plain),
            Host::Name(name) if METADATA_NAMES.contains(&name.as_str()) => {
                Err(Refusal::Metadata { host: name })
            }
            Host::Name(name) if plain && name != "localhost" => Err(Refusal::PlainHttp { host: name }),
            Host::Name(_) => Ok(()),
        }
    }

    /// Checks one address a message would be sent to (`plain`: over http).
    pub fn check_ip(&self, ip: IpAddr, plain: bool) -> Result<(), Refusal> {
        let host = ip.to_string();
        match classify(ip) {
            Class::Loopback => Ok(()),
            Class::Metadata => Err(Refusal::Metadata { host }),
            Class::NotUnicast => Err(Refusal::NotUnicast { host }),
            _ if plain => Err(Refusal::PlainHttp { host }),
            Class::Private if !self.allow_private => Err(Refusal::Private { host }),
            Class::Private | Class::Public => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Destinations = Destinations { allow_private: false };
    const PRIVATE_OK: Destinations = Destinations { allow_private: true };

    fn reason(d: Destinations, url: &str) -> &'static str {
        d.check_url(url).err().map_or("Allowed", |r| r.reason())
    }

    #[test]
    fn https_to_public_hosts_and_anything_to_loopback_is_allowed() {
        for url in [
            "https://hooks.slack.com/services/T0/B0/X",
            "https://93.184.215.14/hook",
            "https://[2606:4700::1111]/",
            "http://127.0.0.1:8080/hook",
            "http://127.9.9.9/",
            "http://[::1]:9000/",
            "http://localhost:3000/x",
            "http://LOCALHOST./x",
            "https://localhost/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(reason(STRICT, url), "Allowed", "{url}");
        }
    }

    #[test]
    fn metadata_and_link_local_are_refused_whatever_the_setting() {
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "https://169.254.169.254/",
            "https://169.254.170.2/v2/credentials",
            "https://[fe80::1]/",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[64:ff9b::169.254.169.254]/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://Metadata.Google.Internal./",
            "http://metadata/",
            "https://100.100.100.200/latest/meta-data/",
        ] {
            for d in [STRICT, PRIVATE_OK] {
                assert_eq!(reason(d, url), "ForbiddenAddress", "{url} {d:?}");
            }
        }
        for url in [
            "https://0.0.0.0/",
            "http://0.0.0.0:8080/",
            "https://[::]/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
        ] {
            assert_eq!(reason(PRIVATE_OK, url), "ForbiddenAddress", "{url}");
        }
    }

    #[test]
    fn private_ranges_need_the_flag_and_still_https() {
        for url in [
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://172.31.255.255/",
            "https://192.168.1.10/",
            "https://100.64.0.1/",
            "https://[fd12:3456::1]/",
            "https://[fc00::1]/",
        ] {
            assert_eq!(reason(STRICT, url), "PrivateAddress", "{url}");
            assert_eq!(reason(PRIVATE_OK, url), "Allowed", "{url}");
        }
        assert_eq!(reason(PRIVATE_OK, "http://10.0.0.1/"), "InsecureAddress");
        assert_eq!(reason(STRICT, "https://172.32.0.1/"), "Allowed");
        assert_eq!(reason(STRICT, "https://100.128.0.1/"), "Allowed");
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        for url in [
            "http://hooks.example.com/x",
            "http://93.184.215.14/",
            "http://192.0.2.1/hook",
            "http://localhost.example.com/",
        ] {
            assert_eq!(reason(PRIVATE_OK, url), "InsecureAddress", "{url}");
        }
        let err = STRICT.check_url("http://hooks.example.com/x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "plain http is allowed only to loopback (127.0.0.0/8, ::1, localhost); hooks.example.com needs https"
        );
    }

    #[test]
    fn what_is_not_an_http_url_is_invalid() {
        for url in [
            "",
            "ftp://x/",
            "hooks.slack.com/x",
            "::",
            "file:///etc/passwd",
            "https:///x",
        ] {
            assert_eq!(reason(PRIVATE_OK, url), "InvalidAddress", "{url:?}");
        }
    }

    #[test]
    fn resolved_addresses_follow_the_same_rule() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(STRICT.check_ip(ip("127.0.0.1"), true).is_ok());
        assert!(STRICT.check_ip(ip("8.8.8.8"), false).is_ok());
        assert_eq!(
            STRICT.check_ip(ip("8.8.8.8"), true).unwrap_err().reason(),
            "InsecureAddress"
        );
        assert_eq!(
            STRICT
                .check_ip(ip("169.254.169.254"), false)
                .unwrap_err()
                .reason(),
            "ForbiddenAddress"
        );
        assert_eq!(
            STRICT.check_ip(ip("10.1.2.3"), false).unwrap_err().reason(),
            "PrivateAddress"
        );
        assert!(PRIVATE_OK.check_ip(ip("10.1.2.3"), false).is_ok());
    }
}
