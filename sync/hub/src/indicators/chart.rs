//! Bar charts as inline SVG, drawn on the server: no script, readable by a screen reader (a
//! title and a description; the page's tables hold every number), and the series told apart by
//! a hatch as well as by colour.

use maud::{Markup, html};

/// One series of bars.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

/// What a chart shows: one group of bars per category, one bar per series.
pub struct Chart<'a> {
    /// Unique on the page: the prefix of the chart's element ids.
    pub id: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub categories: Vec<String>,
    pub series: Vec<Series<'a>>,
    /// The values are counts: grid lines fall on whole numbers.
    pub whole: bool,
    /// Formats a value for the axis and the bars' tooltips.
    pub format: &'a dyn Fn(f64) -> String,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 48.0;
/// The series' colours: each at least 4.5:1 against white (WCAG asks 3:1 of graphics).
const COLOURS: &[&str] = &["#0b4f8a", "#a34a00", "#4a4a4a"];
/// At most this many category labels on the axis; the others are left out (the table has all).
const MAX_LABELS: usize = 14;

/// A round step (1, 2 or 5 times a power of ten) for about four grid lines up to `max`; at
/// least 1 for `whole` numbers (no grid line at half a visit).
fn nice_step(max: f64, whole: bool) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let rough = max / 4.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * magnitude);
    if whole { step.max(1.0) } else { step }
}

/// The second series' fill: its colour striped with white, so it differs by more than colour.
fn hatch(id: &str) -> Markup {
    html! {
        defs {
            pattern #(id) width="6" height="6" patternUnits="userSpaceOnUse"
                patternTransform="rotate(45)" {
                rect width="6" height="6" fill=(COLOURS[1]) {}
                line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2" {}
            }
        }
    }
}

pub fn bar_chart(chart: &Chart<'_>) -> Markup {
    let max = chart
        .series
        .iter()
        .flat_map(|series| series.values.iter().copied())
        .fold(0.0, f64::max);
    let step = nice_step(max, chart.whole);
    let top = (max / step).ceil().max(1.0) * step;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let y = |value: f64| TOP + plot_height * (1.0 - value / top);
    let groups = chart.categories.len().max(1) as f64;
    let group_width = plot_width / groups;
    let bar_width = (group_width * 0.8) / chart.series.len().max(1) as f64;
    let label_every = chart.categories.len().div_ceil(MAX_LABELS).max(1);
    let ticks: Vec<f64> = (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|tick| *tick <= top + step / 2.0)
        .collect();
    let title_id = format!("{}-title", chart.id);
    let desc_id = format!("{}-desc", chart.id);
    let hatch_id = format!("{}-hatch", chart.id);
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-labelledby={ (title_id) " " (desc_id) } xmlns="http://www.w3.org/2000/svg" {
            title #(title_id) { (chart.title) }
            desc #(desc_id) { (chart.description) }
            (hatch(&hatch_id))
            g.grid aria-hidden="true" {
                @for tick in &ticks {
                    line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(*tick)) y2=(y(*tick))
                        stroke="#c8c8c8" stroke-width="1" {}
                    text x=(LEFT - 8.0) y=(y(*tick) + 5.0) text-anchor="end" font-size="14" fill="#1b1b1b" {
                        ((chart.format)(*tick))
                    }
                }
            }
            @for (index, category) in chart.categories.iter().enumerate() {
                @let left = LEFT + group_width * index as f64 + group_width * 0.1;
                g {
                    @for (number, series) in chart.series.iter().enumerate() {
                        @let value = series.values.get(index).copied().unwrap_or(0.0);
                        @let fill = if number == 1 { format!("url(#{hatch_id})") } else { COLOURS[number % COLOURS.len()].to_owned() };
                        rect x=(left + bar_width * number as f64) y=(y(value))
                            width=(bar_width.max(1.0)) height=((y(0.0) - y(value)).max(0.0)) fill=(fill) {
                            title { (category) ": " (series.name) " " ((chart.format)(value)) }
                        }
                    }
                    @if index % label_every == 0 {
                        text x=(LEFT + group_width * (index as f64 + 0.5)) y=(HEIGHT - BOTTOM + 20.0)
                            text-anchor="middle" font-size="14" fill="#1b1b1b" aria-hidden="true" { (category) }
                    }
                }
            }
            line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(0.0)) y2=(y(0.0)) stroke="#1b1b1b" stroke-width="1.5" {}
        }
        ul.legend {
            @for (number, series) in chart.series.iter().enumerate() {
                li {
                    svg width="20" height="20" aria-hidden="true" viewBox="0 0 20 20" {
                        @if number == 1 {
                            (hatch(&format!("{hatch_id}-key")))
                            rect width="20" height="20" fill={ "url(#" (hatch_id) "-key)" } {}
                        } @else {
                            rect width="20" height="20" fill=(COLOURS[number % COLOURS.len()]) {}
                        }
                    }
                    " " (series.name)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.0, true), 1.0);
        assert_eq!(nice_step(3.0, true), 1.0);
        assert_eq!(nice_step(3.0, false), 1.0);
        assert_eq!(nice_step(0.8, false), 0.2);
        assert_eq!(nice_step(10.0, true), 5.0);
        assert_eq!(nice_step(37.0, true), 10.0);
        assert_eq!(nice_step(1234.0, true), 500.0);
    }

    #[test]
    fn a_chart_has_a_bar_per_value_and_says_what_it_shows() {
        let format = |value: f64| format!("{value:.0}");
        let chart = Chart {
            id: "visits",
            title: "Visits per day",
            description: "The most on 2 Nov (7).",
            categories: vec!["1/11".into(), "2/11".into()],
            series: vec![
                Series {
                    name: "visits",
                    values: vec![3.0, 7.0],
                },
                Series {
                    name: "documents",
                    values: vec![4.0, 9.0],
                },
            ],
            whole: true,
            format: &format,
        };
        let svg = bar_chart(&chart).into_string();
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"aria-labelledby="visits-title visits-desc""#));
        assert_eq!(svg.matches("<title>2/11: documents 9</title>").count(), 1);
        assert_eq!(svg.matches("<rect x=").count(), 4);
        assert!(svg.contains("url(#visits-hatch)"));
    }
}
