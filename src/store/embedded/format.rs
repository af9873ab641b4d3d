//! The on-disk record format of the log. One record holds one commit — all
//! its events and its idempotency claim — so a commit is durable whole or not
//! at all:
//!
//! ```text
//! record := len:u32le crc:u32le body[len]          crc = CRC-32 of body
//! body   := kind:u8(=1) first_position:u64le claim event_count:u32le event*
//! claim  := 0u8 | 1u8 key:str fingerprint:str outcome:str
//! event  := stream:str version:u64le event_id:[16] event_type:str schema_version:u32le
//!           payload:str occurred_at_us:i64le recorded_at_us:i64le correlation_id:[16]
//!           causation:(0u8 | 1u8 [16]) role:u8 subject:str
//! str    := len:u32le utf8[len]
//! ```
//!
//! A zero `len` marks the end of the data in a segment (segments are
//! preallocated with zeros).

use chrono::{DateTime, Utc};
use o2ohub_events::{Actor, Role};
use uuid::Uuid;

use crate::store::{EventMetadata, IdempotencyClaim, NewEvent, Position, RecordedEvent};

/// Bytes of a record header.
pub(super) const HEADER: usize = 8;
/// Largest record body accepted; bigger commits are refused.
pub(super) const MAX_BODY: usize = 16 << 20;
const KIND_COMMIT: u8 = 1;

/// A decoded record.
#[derive(Debug)]
pub(super) struct Record {
    /// Position of its first event (the next position, for a claim-only record).
    pub first_position: Position,
    /// The commit's idempotency claim.
    pub claim: Option<IdempotencyClaim>,
    /// The commit's events, in position order.
    pub events: Vec<RecordedEvent>,
}

const ROLES: [Role; 6] = [
    Role::Consumer,
    Role::Staff,
    Role::Rider,
    Role::Admin,
    Role::PaymentProvider,
    Role::System,
];

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends the encoded record (header and body) to `out`.
pub(super) fn encode(
    out: &mut Vec<u8>,
    first_position: Position,
    claim: Option<&IdempotencyClaim>,
    events: &[RecordedEvent],
) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    out.push(KIND_COMMIT);
    out.extend_from_slice(&first_position.to_le_bytes());
    match claim {
        None => out.push(0),
        Some(c) => {
            out.push(1);
            put_str(out, &c.key);
            put_str(out, &c.fingerprint);
            put_str(out, &c.outcome);
        }
    }
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for r in events {
        let e = &r.event;
        let m = &e.metadata;
        put_str(out, &r.stream);
        out.extend_from_slice(&r.version.to_le_bytes());
        out.extend_from_slice(e.event_id.as_bytes());
        put_str(out, &e.event_type);
        out.extend_from_slice(&e.schema_version.to_le_bytes());
        put_str(out, &e.payload);
        out.extend_from_slice(&m.occurred_at.timestamp_micros().to_le_bytes());
        out.extend_from_slice(&r.recorded_at.timestamp_micros().to_le_bytes());
        out.extend_from_slice(m.correlation_id.as_bytes());
        match m.causation_id {
            None => out.push(0),
            Some(c) => {
                out.push(1);
                out.extend_from_slice(c.as_bytes());
            }
        }
        out.push(ROLES.iter().position(|r| *r == m.actor.role).unwrap_or(5) as u8);
        put_str(out, &m.actor.subject);
    }
    let body_len = (out.len() - start - HEADER) as u32;
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// Encoded size of one event of `stream`.
fn event_len(stream: &str, e: &NewEvent) -> usize {
    let strings = 4 * 4
        + stream.len()
        + e.event_type.len()
        + e.payload.len()
        + e.metadata.actor.subject.len();
    let causation = if e.metadata.causation_id.is_some() {
        17
    } else {
        1
    };
    // version, event id, schema version, two instants, correlation id, role
    strings + 8 + 16 + 4 + 8 + 8 + 16 + 1 + causation
}

/// Encoded size of a record (header included).
pub(super) fn encoded_len(claim: Option<&IdempotencyClaim>, events: &[RecordedEvent]) -> usize {
    let claim_len = claim.map_or(0, |c| {
        12 + c.key.len() + c.fingerprint.len() + c.outcome.len()
    });
    let events_len: usize = events.iter().map(|r| event_len(&r.stream, &r.event)).sum();
    HEADER + 1 + 8 + 1 + claim_len + 4 + events_len
}

/// Encoded size of the record a commit would become, to refuse oversized
/// commits before they are queued.
pub(super) fn commit_len(commit: &crate::store::Commit) -> usize {
    let claim_len = commit.idempotency.as_ref().map_or(0, |c| {
        12 + c.key.len() + c.fingerprint.len() + c.outcome.len()
    });
    let events_len: usize = commit
        .writes
        .iter()
        .flat_map(|w| w.events.iter().map(|e| event_len(&w.stream, e)))
        .sum();
    HEADER + 1 + 8 + 1 + claim_len + 4 + events_len
}

/// What is wrong with bytes that should hold a record.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Invalid {
    /// The header says zero: no record here (end of data).
    End,
    /// The record is cut short, fails its CRC or does not parse.
    Damaged(String),
}

/// Reads the header at the start of `bytes`: the body length, or why not.
pub(super) fn header(bytes: &[u8]) -> Result<(usize, u32), Invalid> {
    if bytes.len() < HEADER {
        return Err(Invalid::Damaged("a record header is cut short".into()));
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap_or_default());
    if len == 0 && crc == 0 {
        return Err(Invalid::End);
    }
    if len == 0 || len > MAX_BODY {
        return Err(Invalid::Damaged(format!(
            "a record header claims {len} bytes"
        )));
    }
    Ok((len, crc))
}

/// Decodes the record at the start of `bytes`; returns it and its total size.
pub(super) fn decode(bytes: &[u8]) -> Result<(Record, usize), Invalid> {
    let (len, crc) = header(bytes)?;
    let Some(body) = bytes.get(HEADER..HEADER + len) else {
        return Err(Invalid::Damaged(format!(
            "a record of {len} bytes is cut short"
        )));
    };
    if crc32fast::hash(body) != crc {
        return Err(Invalid::Damaged("a record fails its checksum".into()));
    }
    let record = Reader { bytes: body, at: 0 }
        .record()
        .map_err(Invalid::Damaged)?;
    Ok((record, HEADER + len))
}

/// A cursor over a record body.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or("a record body is cut short")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "short")?,
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "short")?,
        ))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "short")?,
        ))
    }

    fn uuid(&mut self) -> Result<Uuid, String> {
        Uuid::from_slice(self.take(16)?).map_err(|e| e.to_string())
    }

    fn str(&mut self) -> Result<String, String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| "a string is not UTF-8".to_owned())
    }

    fn time(&mut self) -> Result<DateTime<Utc>, String> {
        DateTime::from_timestamp_micros(self.i64()?)
            .ok_or_else(|| "a time is out of range".to_owned())
    }

    fn record(mut self) -> Result<Record, String> {
        if self.u8()? != KIND_COMMIT {
            return Err("unknown record kind".into());
        }
        let first_position = self.u64()?;
        let claim = match self.u8()? {
            0 => None,
            1 => Some(IdempotencyClaim {
                key: self.str()?,
                fingerprint: self.str()?,
                outcome: self.str()?,
            }),
            _ => return Err("bad claim flag".into()),
        };
        let count = self.u32()? as usize;
        let mut events = Vec::with_capacity(count.min(4096));
        for i in 0..count {
            let stream = self.str()?;
            let version = self.u64()?;
            let event_id = self.uuid()?;
            let event_type = self.str()?;
            let schema_version = self.u32()?;
            let payload = self.str()?;
            let occurred_at = self.time()?;
            let recorded_at = self.time()?;
            let correlation_id = self.uuid()?;
            let causation_id = match self.u8()? {
                0 => None,
                1 => Some(self.uuid()?),
                _ => return Err("bad causation flag".into()),
            };
            let role = *ROLES.get(self.u8()? as usize).ok_or("unknown role")?;
            let subject = self.str()?;
            events.push(RecordedEvent {
                position: first_position + i as u64,
                stream,
                version,
                recorded_at,
                event: NewEvent {
                    event_id,
                    event_type,
                    schema_version,
                    payload,
                    metadata: EventMetadata {
                        occurred_at,
                        correlation_id,
                        causation_id,
                        actor: Actor { role, subject },
                    },
                },
            });
        }
        if self.at != self.bytes.len() {
            return Err("trailing bytes after the last event".into());
        }
        Ok(Record {
            first_position,
            claim,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(position: u64) -> RecordedEvent {
        RecordedEvent {
            position,
            stream: "order-1".into(),
            version: position,
            recorded_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            event: NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "OrderPlaced".into(),
                schema_version: 1,
                payload: r#"{"a":1}"#.into(),
                metadata: EventMetadata {
                    occurred_at: DateTime::from_timestamp_micros(1_764_000_000_000_001).unwrap(),
                    correlation_id: Uuid::now_v7(),
                    causation_id: Some(Uuid::now_v7()),
                    actor: Actor {
                        role: Role::Rider,
                        subject: "r-1".into(),
                    },
                },
            },
        }
    }

    #[test]
    fn records_round_trip_with_claims_and_sizes_match() {
        let mut events = vec![sample(7), sample(8)];
        events[1].event.metadata.causation_id = None;
        let claim = IdempotencyClaim {
            key: "k".into(),
            fingerprint: "f".into(),
            outcome: "o".into(),
        };
        let mut buf = Vec::new();
        encode(&mut buf, 7, Some(&claim), &events);
        assert_eq!(buf.len(), encoded_len(Some(&claim), &events));
        let commit = crate::store::Commit {
            writes: vec![crate::store::StreamWrite {
                stream: "order-1".into(),
                expected: crate::store::ExpectedVersion::Any,
                events: events.iter().map(|e| e.event.clone()).collect(),
            }],
            idempotency: Some(claim.clone()),
        };
        assert_eq!(commit_len(&commit), buf.len());
        let (record, size) = decode(&buf).unwrap();
        assert_eq!(size, buf.len());
        assert_eq!(record.first_position, 7);
        assert_eq!(record.claim, Some(claim));
        assert_eq!(record.events, events);
    }

    #[test]
    fn damage_is_detected_and_zeros_mean_the_end() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, None, &[sample(1)]);
        assert_eq!(decode(&[0u8; 64]).unwrap_err(), Invalid::End);
        for cut in [3, HEADER + 2, buf.len() - 1] {
            assert!(
                matches!(decode(&buf[..cut]), Err(Invalid::Damaged(_))),
                "cut at {cut}"
            );
        }
        let mut flipped = buf.clone();
        flipped[HEADER + 20] ^= 0x10;
        assert!(matches!(decode(&flipped), Err(Invalid::Damaged(m)) if m.contains("checksum")));
    }
}
