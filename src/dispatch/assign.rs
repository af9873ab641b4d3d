//! The assignment of deliveries to riders on a sparse candidate graph: a
//! maximum-benefit matching where every delivery takes at most one rider,
//! every rider at most one delivery, and leaving a delivery unassigned is
//! worth 0.
//!
//! Solved with Bertsekas' auction algorithm: deliveries are the bidders,
//! riders the objects; each delivery also has a private "wait" object of
//! value 0, which makes the problem feasible whatever the graph. One bidding
//! phase from zero prices keeps the complementary-slackness condition of
//! this asymmetric problem for free (a rider whose price rose was bid for,
//! and a rider once taken stays taken), so the result is within `ε` per
//! delivery of the optimum; with benefits multiplied by `n + 1` and `ε = 1`
//! it is exactly optimal. A bid raises a price by at least `ε`, so the work
//! is bounded by riders × (largest benefit ÷ ε) bids and in practice is a few
//! bids per edge — where dense Kuhn–Munkres is O(n³).

use std::collections::VecDeque;

/// One edge of the candidate graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arc {
    /// The rider (object) index.
    pub rider: usize,
    /// What assigning them is worth (> 0).
    pub benefit: i64,
}

/// An assignment within `ε = 1` benefit unit per delivery of the optimum:
/// for each delivery, its rider or `None`.
pub fn assign(riders: usize, arcs: &[Vec<Arc>]) -> Vec<Option<usize>> {
    auction(riders, arcs, 1)
}

/// The auction with benefits multiplied by `scale`; `scale = n + 1` gives
/// the exact optimum (slower: prices climb in finer steps).
pub fn auction(riders: usize, arcs: &[Vec<Arc>], scale: i64) -> Vec<Option<usize>> {
    let n = arcs.len();
    let mut price = vec![0i64; riders];
    let mut owner: Vec<Option<usize>> = vec![None; riders];
    let mut choice: Vec<Option<usize>> = vec![None; n];
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| !arcs[i].is_empty()).collect();
    bid_until_settled(
        arcs,
        scale,
        1,
        &mut price,
        &mut owner,
        &mut choice,
        &mut queue,
    );
    choice
}

#[allow(clippy::too_many_arguments)]
fn bid_until_settled(
    arcs: &[Vec<Arc>],
    scale: i64,
    eps: i64,
    price: &mut [i64],
    owner: &mut [Option<usize>],
    choice: &mut [Option<usize>],
    queue: &mut VecDeque<usize>,
) {
    while let Some(i) = queue.pop_front() {
        // Best and second-best net value; waiting is worth 0.
        let (mut best, mut best_value, mut second) = (None, 0i64, 0i64);
        for a in &arcs[i] {
            let v = a.benefit * scale - price[a.rider];
            if v > best_value {
                second = best_value;
                best_value = v;
                best = Some(a.rider);
            } else if v > second {
                second = v;
            }
        }
        let Some(r) = best else {
            continue; // waiting is best: stays unassigned this phase
        };
        price[r] += best_value - second + eps;
        if let Some(previous) = owner[r].replace(i) {
            choice[previous] = None;
            queue.push_back(previous);
        }
        choice[i] = Some(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn total(arcs: &[Vec<Arc>], choice: &[Option<usize>]) -> i64 {
        choice
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|r| arcs[i].iter().find(|a| a.rider == r).unwrap().benefit))
            .sum()
    }

    /// Every matching, tried.
    fn brute(arcs: &[Vec<Arc>], i: usize, used: &mut Vec<bool>) -> i64 {
        if i == arcs.len() {
            return 0;
        }
        let mut best = brute(arcs, i + 1, used);
        for a in &arcs[i] {
            if !used[a.rider] {
                used[a.rider] = true;
                best = best.max(a.benefit + brute(arcs, i + 1, used));
                used[a.rider] = false;
            }
        }
        best
    }

    #[test]
    fn the_contested_rider_goes_where_it_is_worth_most_overall() {
        // Both want rider 0; delivery 1 has an almost-as-good alternative.
        let arcs = vec![
            vec![Arc {
                rider: 0,
                benefit: 10,
            }],
            vec![
                Arc {
                    rider: 0,
                    benefit: 12,
                },
                Arc {
                    rider: 1,
                    benefit: 11,
                },
            ],
        ];
        assert_eq!(assign(2, &arcs), vec![Some(0), Some(1)]);
    }

    #[test]
    fn no_edges_no_assignment() {
        assert_eq!(assign(3, &[vec![], vec![]]), vec![None, None]);
        assert_eq!(assign(0, &[]), Vec::<Option<usize>>::new());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn the_auction_is_optimal_and_a_matching(
            riders in 1usize..6,
            raw in prop::collection::vec(prop::collection::vec((0usize..6, 1i64..1000), 0..4), 0..7),
        ) {
            let arcs: Vec<Vec<Arc>> = raw
                .into_iter()
                .map(|edges| {
                    let mut seen = std::collections::HashSet::new();
                    edges
                        .into_iter()
                        .filter(|(r, _)| *r < riders && seen.insert(*r))
                        .map(|(rider, benefit)| Arc { rider, benefit })
                        .collect()
                })
                .collect();
            let n = arcs.len() as i64;
            let choice = auction(riders, &arcs, n + 1);
            let mut used = vec![false; riders];
            for (i, c) in choice.iter().enumerate() {
                if let Some(r) = c {
                    prop_assert!(!used[*r], "rider {} assigned twice", r);
                    used[*r] = true;
                    prop_assert!(arcs[i].iter().any(|a| a.rider == *r));
                }
            }
            let mut used = vec![false; riders];
            let best = brute(&arcs, 0, &mut used);
            prop_assert_eq!(total(&arcs, &choice), best);
            // Unscaled: within one unit per delivery.
            let coarse = total(&arcs, &assign(riders, &arcs));
            prop_assert!(coarse >= best - n, "{} vs {}", coarse, best);
        }
    }
}
