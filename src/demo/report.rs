//! `--report demo.html`: the day as charts — orders and visits per hour,
//! on-time rate per hour, the delivery-time distribution, and supply against
//! demand per H3 cell as hex maps. One self-contained file: inline SVG and
//! CSS, nothing fetched when it is opened.

use std::fmt::Write as _;

use o2ohub_events::LatLng;

use super::figures::{Cell, Figures};
use super::summary::Summary;

/// Chart size in SVG units.
const W: f64 = 640.0;
const H: f64 = 220.0;
const PAD: f64 = 36.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A bar chart of `(label, value)` with a y-axis maximum `top`.
fn bars(title: &str, data: &[(String, f64)], top: f64, unit: &str, colour: &str) -> String {
    let mut svg = format!(
        r#"<figure><figcaption>{}</figcaption><svg viewBox="0 0 {W} {H}" role="img">"#,
        escape(title)
    );
    let top = if top > 0.0 { top } else { 1.0 };
    let n = data.len().max(1) as f64;
    let slot = (W - 2.0 * PAD) / n;
    let _ = write!(
        svg,
        r#"<line x1="{PAD}" y1="{y}" x2="{x}" y2="{y}" class="axis"/>"#,
        y = H - PAD,
        x = W - PAD
    );
    for frac in [0.5, 1.0] {
        let y = H - PAD - frac * (H - 2.0 * PAD);
        let _ = write!(
            svg,
            r#"<line x1="{PAD}" y1="{y:.1}" x2="{x}" y2="{y:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{v}</text>"#,
            x = W - PAD,
            tx = PAD - 4.0,
            ty = y + 4.0,
            v = format_value(top * frac, unit)
        );
    }
    for (i, (label, value)) in data.iter().enumerate() {
        let h = (value / top).clamp(0.0, 1.0) * (H - 2.0 * PAD);
        let x = PAD + i as f64 * slot + slot * 0.12;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"><title>{l}: {v}</title></rect>"#,
            y = H - PAD - h,
            w = slot * 0.76,
            l = escape(label),
            v = format_value(*value, unit)
        );
        if data.len() <= 24 || i % 2 == 0 {
            let _ = write!(
                svg,
                r#"<text x="{tx:.1}" y="{ty}" class="tick" text-anchor="middle">{l}</text>"#,
                tx = x + slot * 0.38,
                ty = H - PAD + 14.0,
                l = escape(label)
            );
        }
    }
    svg.push_str("</svg></figure>");
    svg
}

fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "%" => format!("{:.0}%", v),
        _ => format!("{:.0}", v),
    }
}

/// A cell's outline (lng, lat per vertex), its value, its index.
type Hexagon<'a> = (Vec<(f64, f64)>, f64, &'a str);

/// A hex map of one quantity per H3 cell.
fn hex_map(
    title: &str,
    cells: &[(String, f64)],
    labels: &[(&str, LatLng)],
    colour: (u8, u8, u8),
    unit: &str,
) -> String {
    let polygons: Vec<Hexagon> = cells
        .iter()
        .filter_map(|(cell, v)| {
            let index: h3o::CellIndex = cell.parse().ok()?;
            let ring = index
                .boundary()
                .iter()
                .map(|ll| (ll.lng(), ll.lat()))
                .collect();
            Some((ring, *v, cell.as_str()))
        })
        .collect();
    let mut svg = format!(r#"<figure><figcaption>{}</figcaption>"#, escape(title));
    if polygons.is_empty() {
        svg.push_str("<p class=\"empty\">nothing to map</p></figure>");
        return svg;
    }
    let points = polygons.iter().flat_map(|p| p.0.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    let squash = ((y0 + y1) / 2.0).to_radians().cos();
    let (span_x, span_y) = (((x1 - x0) * squash).max(1e-9), (y1 - y0).max(1e-9));
    let size = 400.0;
    let scale = size / span_x.max(span_y);
    let (w, h) = (span_x * scale + 20.0, span_y * scale + 20.0);
    let top = polygons.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9);
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {w:.0} {h:.0}" class="map" role="img">"#
    );
    for (ring, v, cell) in &polygons {
        let path: Vec<String> = ring
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    10.0 + (x - x0) * squash * scale,
                    10.0 + (y1 - y) * scale
                )
            })
            .collect();
        let alpha = 0.08 + 0.92 * (v / top).sqrt();
        let _ = write!(
            svg,
            r##"<polygon points="{}" fill="rgba({},{},{},{alpha:.2})" stroke="#999" stroke-width="0.5"><title>{cell}: {}</title></polygon>"##,
            path.join(" "),
            colour.0,
            colour.1,
            colour.2,
            if unit == "h" {
                format!("{v:.2} rider-hours")
            } else {
                format!("{v:.0} deliveries")
            }
        );
    }
    for (name, at) in labels {
        if (x0..=x1).contains(&at.lng) && (y0..=y1).contains(&at.lat) {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="place" text-anchor="middle">{}</text>"#,
                10.0 + (at.lng - x0) * squash * scale,
                10.0 + (y1 - at.lat) * scale,
                escape(name)
            );
        }
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Renders the report.
pub fn render(summary: &Summary) -> String {
    let f: &Figures = &summary.figures;
    let hours: Vec<u32> = f.hours.keys().copied().collect();
    let orders: Vec<(String, f64)> = hours
        .iter()
        .map(|h| (format!("{h:02}h"), f.hours[h].orders as f64))
        .collect();
    let visits: Vec<(String, f64)> = hours
        .iter()
        .map(|h| (format!("{h:02}h"), f.hours[h].visits as f64))
        .collect();
    let on_time: Vec<(String, f64)> = hours
        .iter()
        .filter(|h| f.hours[*h].delivered > 0)
        .map(|h| {
            let x = &f.hours[h];
            (
                format!("{h:02}h"),
                100.0 * x.on_time as f64 / x.delivered as f64,
            )
        })
        .collect();
    let bin = 5.0;
    let longest = f.delivery_minutes.iter().copied().fold(0.0, f64::max);
    let bins = ((longest / bin).floor() as usize + 1).min(36);
    let mut histogram = vec![0.0; bins];
    for m in &f.delivery_minutes {
        histogram[((m / bin) as usize).min(bins - 1)] += 1.0;
    }
    let histogram: Vec<(String, f64)> = histogram
        .into_iter()
        .enumerate()
        .map(|(i, n)| (format!("{}", i * bin as usize), n))
        .collect();
    let top = |d: &[(String, f64)]| d.iter().map(|x| x.1).fold(0.0, f64::max);
    let cells: Vec<(&String, &Cell)> = f.cells.iter().collect();
    let demand: Vec<(String, f64)> = cells
        .iter()
        .map(|(c, x)| ((*c).clone(), x.deliveries as f64))
        .collect();
    let supply: Vec<(String, f64)> = cells
        .iter()
        .map(|(c, x)| ((*c).clone(), x.rider_hours))
        .collect();
    let summary_text = escape(&summary.to_string());
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>o2ohub demo · seed {seed}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1360px;color:#222;padding:0 16px}}
h1{{font-size:20px}} figure{{margin:0;background:#fafafa;border:1px solid #e4e4e4;border-radius:6px;padding:8px}}
figcaption{{font-weight:600;margin-bottom:4px}} .grid2{{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px;margin:16px 0}}
svg{{width:100%;height:auto}} .axis{{stroke:#444}} .grid{{stroke:#ddd}} .tick{{font-size:10px;fill:#555}}
pre{{background:#f4f4f4;padding:12px;border-radius:6px;overflow:auto}} .map{{max-height:460px}} .place{{font-size:9px;fill:#333;opacity:.7}} .empty{{color:#888}}
</style></head><body>
<h1>o2ohub demo — seed {seed}, {window}</h1>
<div class="grid2">{orders}{visits}{on_time}{histogram}</div>
<h2>Supply and demand per H3 cell (resolution 8)</h2>
<div class="grid2">{demand}{supply}</div>
<h2>Summary</h2><pre>{summary_text}</pre>
</body></html>
"#,
        seed = summary.seed,
        window = escape(&summary.window),
        orders = bars(
            "Orders placed per hour (local)",
            &orders,
            top(&orders),
            "",
            "#e07b39"
        ),
        visits = bars(
            "Visits booked per hour (local)",
            &visits,
            top(&visits),
            "",
            "#5b8def"
        ),
        on_time = bars(
            "On-time rate per hour of placement",
            &on_time,
            100.0,
            "%",
            "#3aa36b"
        ),
        histogram = bars(
            "Delivery time, placement to hand-over (minutes, 5-minute bins)",
            &histogram,
            top(&histogram),
            "",
            "#8a6bd1"
        ),
        demand = hex_map(
            "Demand: deliveries picked up in the cell",
            &demand,
            &summary.districts,
            (224, 123, 57),
            "n"
        ),
        supply = hex_map(
            "Supply: rider-hours spent in the cell",
            &supply,
            &summary.districts,
            (58, 163, 107),
            "h"
        ),
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_top_and_escape_labels() {
        let svg = bars(
            "a <b>",
            &[("x&y".into(), 5.0), ("z".into(), 10.0)],
            10.0,
            "",
            "#000",
        );
        assert!(svg.contains("a &lt;b&gt;") && svg.contains("x&amp;y"));
        assert!(svg.contains(r#"height="148.0""#), "{svg}");
    }

    #[test]
    fn hex_maps_draw_one_polygon_per_cell() {
        let cell = h3o::LatLng::new(31.23, 121.47)
            .unwrap()
            .to_cell(h3o::Resolution::Eight)
            .to_string();
        let svg = hex_map(
            "m",
            &[(cell, 3.0), ("not-a-cell".into(), 1.0)],
            &[("Far Away", LatLng { lat: 0.0, lng: 0.0 })],
            (0, 0, 0),
            "n",
        );
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert!(
            !svg.contains("Far Away"),
            "labels outside the map are left out"
        );
    }
}
