//! Li & Lim PDPTW instance parser and SINTEF solution writer.
//!
//! Format (CRLF or LF): line 1 `vehicles capacity speed`; then one node a
//! line `id x y demand earliest latest service pickup_sibling delivery_sibling`,
//! node 0 being the depot whose window is the horizon. A pickup names its
//! delivery in the last field, a delivery its pickup in the one before.

use super::model::StopKind;
use super::problem::{Problem, Stop, Task, Vehicle};
use super::solution::Solution;
use super::travel::{Euclidean, Point};
use thiserror::Error;

/// A parse failure, naming the 1-based line of the input.
#[derive(Debug, Error, PartialEq)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What went wrong.
    pub kind: ParseErrorKind,
}

/// What went wrong while parsing.
#[derive(Debug, Error, PartialEq)]
pub enum ParseErrorKind {
    /// The input has no header line.
    #[error("empty input")]
    Empty,
    /// A field is not a number.
    #[error("bad number {0:?}")]
    BadNumber(String),
    /// Wrong number of fields.
    #[error("expected {expected} fields, found {found}")]
    Columns {
        /// Fields required.
        expected: usize,
        /// Fields present.
        found: usize,
    },
    /// Capacity below zero.
    #[error("negative capacity")]
    NegativeCapacity,
    /// Vehicle count below one or not an integer.
    #[error("bad vehicle count")]
    BadVehicleCount,
    /// The first node is not the depot 0.
    #[error("first node must be the depot with id 0")]
    MissingDepot,
    /// The same node id twice.
    #[error("duplicate node id {0}")]
    DuplicateId(usize),
    /// A node is neither a pickup (0, d) nor a delivery (p, 0).
    #[error("node {0} is neither a pickup nor a delivery")]
    NotPickupOrDelivery(usize),
    /// A pickup's delivery does not exist, does not point back, or its demand differs.
    #[error("pickup {pickup} and delivery {delivery} do not match")]
    Mismatched {
        /// Pickup node id.
        pickup: usize,
        /// Delivery node id it names.
        delivery: usize,
    },
    /// A delivery no pickup names.
    #[error("delivery {0} has no pickup naming it")]
    Orphan(usize),
}

/// A parsed Li & Lim instance: the general [`Problem`] plus the file's node
/// ids of each task's pickup and delivery (for writing solutions).
#[derive(Debug)]
pub struct Instance {
    /// The problem to solve (vehicles at the depot, one task per pair).
    pub problem: Problem,
    /// `(pickup id, delivery id)` per task, in the file's numbering.
    pub node_ids: Vec<(usize, usize)>,
}

struct Row {
    line: usize,
    id: usize,
    x: f64,
    y: f64,
    demand: f64,
    e: f64,
    l: f64,
    s: f64,
    p: usize,
    d: usize,
}

fn num(line: usize, s: &str) -> Result<f64, ParseError> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(ParseError {
            line,
            kind: ParseErrorKind::BadNumber(s.to_string()),
        }),
    }
}

fn int(line: usize, s: &str) -> Result<usize, ParseError> {
    s.parse::<usize>().map_err(|_| ParseError {
        line,
        kind: ParseErrorKind::BadNumber(s.to_string()),
    })
}

/// Parses a Li & Lim instance; `name` becomes [`Problem::name`].
pub fn parse_named(text: &str, name: &str) -> Result<Instance, ParseError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let (hl, header) = lines.next().ok_or(ParseError {
        line: 1,
        kind: ParseErrorKind::Empty,
    })?;
    let h: Vec<&str> = header.split_whitespace().collect();
    if h.len() != 3 {
        return Err(ParseError {
            line: hl,
            kind: ParseErrorKind::Columns {
                expected: 3,
                found: h.len(),
            },
        });
    }
    let k = num(hl, h[0])?;
    let cap = num(hl, h[1])?;
    num(hl, h[2])?;
    if k < 1.0 || k.fract() != 0.0 {
        return Err(ParseError {
            line: hl,
            kind: ParseErrorKind::BadVehicleCount,
        });
    }
    if cap < 0.0 {
        return Err(ParseError {
            line: hl,
            kind: ParseErrorKind::NegativeCapacity,
        });
    }
    let mut rows = Vec::new();
    for (line, l) in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 9 {
            return Err(ParseError {
                line,
                kind: ParseErrorKind::Columns {
                    expected: 9,
                    found: f.len(),
                },
            });
        }
        rows.push(Row {
            line,
            id: int(line, f[0])?,
            x: num(line, f[1])?,
            y: num(line, f[2])?,
            demand: num(line, f[3])?,
            e: num(line, f[4])?,
            l: num(line, f[5])?,
            s: num(line, f[6])?,
            p: int(line, f[7])?,
            d: int(line, f[8])?,
        });
    }
    let depot = match rows.first() {
        Some(r) if r.id == 0 => r,
        Some(r) => {
            return Err(ParseError {
                line: r.line,
                kind: ParseErrorKind::MissingDepot,
            })
        }
        None => {
            return Err(ParseError {
                line: hl + 1,
                kind: ParseErrorKind::MissingDepot,
            })
        }
    };
    let max_id = rows.iter().map(|r| r.id).max().unwrap_or(0);
    let mut by_id: Vec<Option<usize>> = vec![None; max_id + 1];
    for (i, r) in rows.iter().enumerate() {
        if by_id[r.id].replace(i).is_some() {
            return Err(ParseError {
                line: r.line,
                kind: ParseErrorKind::DuplicateId(r.id),
            });
        }
    }
    let stop = |r: &Row| Stop {
        location: Point::new(r.x, r.y),
        service: r.s,
        earliest: r.e,
        latest: r.l,
    };
    let mut tasks = Vec::new();
    let mut node_ids = Vec::new();
    let mut claimed = vec![false; rows.len()];
    for r in &rows[1..] {
        match (r.p, r.d) {
            (0, d) if d > 0 => {
                let dr = by_id.get(d).copied().flatten().map(|i| (i, &rows[i]));
                match dr {
                    Some((i, dr))
                        if dr.p == r.id && dr.d == 0 && dr.demand == -r.demand && i != 0 =>
                    {
                        claimed[i] = true;
                        tasks.push(Task {
                            id: r.id,
                            load: r.demand,
                            pickup: stop(r),
                            delivery: stop(dr),
                            onboard: None,
                        });
                        node_ids.push((r.id, dr.id));
                    }
                    _ => {
                        return Err(ParseError {
                            line: r.line,
                            kind: ParseErrorKind::Mismatched {
                                pickup: r.id,
                                delivery: d,
                            },
                        })
                    }
                }
                if r.demand < 0.0 {
                    return Err(ParseError {
                        line: r.line,
                        kind: ParseErrorKind::Mismatched {
                            pickup: r.id,
                            delivery: d,
                        },
                    });
                }
            }
            (p, 0) if p > 0 => {}
            _ => {
                return Err(ParseError {
                    line: r.line,
                    kind: ParseErrorKind::NotPickupOrDelivery(r.id),
                })
            }
        }
    }
    for (i, r) in rows.iter().enumerate().skip(1) {
        if r.d == 0 && !claimed[i] {
            return Err(ParseError {
                line: r.line,
                kind: ParseErrorKind::Orphan(r.id),
            });
        }
    }
    let vehicle = |id| Vehicle {
        id,
        start: Point::new(depot.x, depot.y),
        end: Some(Point::new(depot.x, depot.y)),
        capacity: cap,
        shift_start: depot.e,
        shift_end: depot.l,
    };
    Ok(Instance {
        problem: Problem {
            name: name.to_string(),
            vehicles: (0..k as usize).map(vehicle).collect(),
            tasks,
            travel: Box::new(Euclidean),
        },
        node_ids,
    })
}

/// Parses a Li & Lim instance with an empty name.
pub fn parse(text: &str) -> Result<Instance, ParseError> {
    parse_named(text, "")
}

/// Writes `solution` in the SINTEF route format the benchmark verifier reads.
pub fn write_sintef(instance: &Instance, solution: &Solution, authors: &str) -> String {
    let mut s = format!(
        "Instance name : {}\nAuthors       : {}\nDate          : -\nReference     : o2ohub routing (vehicles {}, distance {:.4})\nSolution\n",
        instance.problem.name, authors, solution.vehicles, solution.distance
    );
    for (k, r) in solution.routes.iter().enumerate() {
        s.push_str(&format!("Route {} :", k + 1));
        for st in &r.stops {
            let (p, d) = instance.node_ids[st.task];
            let id = if st.kind == StopKind::Pickup { p } else { d };
            s.push_str(&format!(" {id}"));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str =
        "2\t10\t1\r\n0 0 0 0 0 100 0 0 0\r\n1 1 0 5 0 50 1 0 2\r\n2 2 0 -5 0 60 1 1 0\r\n";

    fn err(text: &str) -> ParseError {
        parse(text).expect_err("should fail")
    }

    #[test]
    fn parses_small_instance() {
        let i = parse(OK).unwrap();
        assert_eq!(i.problem.vehicles.len(), 2);
        assert_eq!(i.problem.tasks.len(), 1);
        assert_eq!(i.node_ids, vec![(1, 2)]);
        assert_eq!(i.problem.tasks[0].load, 5.0);
        assert_eq!(i.problem.vehicles[0].shift_end, 100.0);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let cases: Vec<(String, usize, ParseErrorKind)> = vec![
            (
                OK.replace("1 1 0 5", "1 x 0 5"),
                3,
                ParseErrorKind::BadNumber("x".into()),
            ),
            (
                OK.replace("2 2 0 -5 0 60 1 1 0", "2 2 0 -5 0 60 1 1"),
                4,
                ParseErrorKind::Columns {
                    expected: 9,
                    found: 8,
                },
            ),
            (
                OK.replace("2\t10\t1", "2\t-10\t1"),
                1,
                ParseErrorKind::NegativeCapacity,
            ),
            (
                OK.replace("2\t10\t1", "2\t10"),
                1,
                ParseErrorKind::Columns {
                    expected: 3,
                    found: 2,
                },
            ),
            (
                OK.replace("1 1 0 5 0 50 1 0 2", "1 1 0 5 0 50 1 0 3"),
                3,
                ParseErrorKind::Mismatched {
                    pickup: 1,
                    delivery: 3,
                },
            ),
            (
                OK.replace("2 2 0 -5 0 60 1 1 0", "2 2 0 -4 0 60 1 1 0"),
                3,
                ParseErrorKind::Mismatched {
                    pickup: 1,
                    delivery: 2,
                },
            ),
            (
                OK.replace("1 1 0 5 0 50 1 0 2", "1 1 0 5 0 50 1 0 0"),
                3,
                ParseErrorKind::NotPickupOrDelivery(1),
            ),
            (
                format!("{OK}3 2 0 -5 0 60 1 1 0\r\n"),
                5,
                ParseErrorKind::Orphan(3),
            ),
            (
                OK.replace("2 2 0 -5", "1 2 0 -5"),
                4,
                ParseErrorKind::DuplicateId(1),
            ),
            (String::new(), 1, ParseErrorKind::Empty),
        ];
        for (text, line, kind) in cases {
            assert_eq!(err(&text), ParseError { line, kind }, "{text:?}");
        }
    }

    #[test]
    fn error_message_names_line() {
        let e = err(&OK.replace("1 1 0 5", "1 1 0 five"));
        assert_eq!(e.to_string(), "line 3: bad number \"five\"");
    }
}
