//! Names on tiles: an 8x8 bitmap font drawn into the picture's luma on a shaded bar. Names are
//! what participants typed: any character the font lacks is drawn as `?`, and a name too long for
//! its tile is cut.

use font8x8::{BASIC_FONTS, GREEK_FONTS, LATIN_FONTS, UnicodeFonts};

use crate::frame::Frame;
use crate::layout::Rect;

const GLYPH: u32 = 8;
const PAD: u32 = 4;
const WHITE: u8 = 235;

fn glyph(c: char) -> [u8; 8] {
    BASIC_FONTS
        .get(c)
        .or_else(|| LATIN_FONTS.get(c))
        .or_else(|| GREEK_FONTS.get(c))
        .or_else(|| BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Draws `label` at the bottom left of `tile`, at twice the font's size on tiles 360 pixels high
/// or more.
pub fn draw_label(frame: &mut Frame, tile: Rect, label: &str) {
    if label.is_empty() || tile.w < 2 * PAD + GLYPH {
        return;
    }
    let scale = if tile.h >= 360 { 2 } else { 1 };
    let cell = GLYPH * scale;
    let fits = ((tile.w - 2 * PAD) / cell) as usize;
    let chars: Vec<char> = label
        .chars()
        .filter(|c| !c.is_control())
        .take(fits)
        .collect();
    if chars.is_empty() || tile.h < cell + 2 * PAD {
        return;
    }
    let bar = Rect {
        x: tile.x,
        y: (tile.y + tile.h - cell - 2 * PAD) & !1,
        w: ((chars.len() as u32 * cell + 2 * PAD + 1) & !1).min(tile.w),
        h: (cell + 2 * PAD + 1) & !1,
    };
    frame.shade_rect(bar);
    let (x0, y0) = (bar.x + PAD, bar.y + PAD);
    for (i, c) in chars.iter().enumerate() {
        let rows = glyph(*c);
        for (gy, bits) in rows.iter().enumerate() {
            for gx in 0..GLYPH {
                if bits & (1 << gx) == 0 {
                    continue;
                }
                for sy in 0..scale {
                    for sx in 0..scale {
                        frame.set_luma(
                            x0 + i as u32 * cell + gx * scale + sx,
                            y0 + gy as u32 * scale + sy,
                            WHITE,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BLACK;

    fn lit(f: &Frame, r: Rect) -> usize {
        (r.y..r.y + r.h)
            .flat_map(|y| (r.x..r.x + r.w).map(move |x| (x, y)))
            .filter(|&(x, y)| f.pixel(x, y).0 == WHITE)
            .count()
    }

    #[test]
    fn a_name_is_drawn_inside_its_tile_only() {
        let mut f = Frame::filled(640, 360, BLACK);
        let tile = Rect {
            x: 0,
            y: 180,
            w: 320,
            h: 180,
        };
        draw_label(&mut f, tile, "Ada Lovelace");
        assert!(lit(&f, tile) > 50);
        assert_eq!(
            lit(
                &f,
                Rect {
                    x: 0,
                    y: 0,
                    w: 640,
                    h: 180
                }
            ),
            0
        );
        assert_eq!(
            lit(
                &f,
                Rect {
                    x: 320,
                    y: 0,
                    w: 320,
                    h: 360
                }
            ),
            0
        );
    }

    #[test]
    fn a_label_on_any_colour_shades_it_without_overflow() {
        let mut f = Frame::filled(64, 64, crate::frame::Yuv(200, 20, 240));
        draw_label(
            &mut f,
            Rect {
                x: 0,
                y: 0,
                w: 64,
                h: 64,
            },
            "Ab",
        );
        let shaded = f.pixel(1, 62);
        assert!(
            shaded.0 < 200 && shaded.1 > 20 && shaded.2 < 240,
            "{shaded:?}"
        );
    }

    #[test]
    fn unknown_characters_long_names_and_tiny_tiles_do_not_panic() {
        let mut f = Frame::filled(64, 64, BLACK);
        draw_label(
            &mut f,
            Rect {
                x: 0,
                y: 0,
                w: 64,
                h: 64,
            },
            "名前 Ünïcødé \u{7}😀 and a very long name indeed",
        );
        draw_label(
            &mut f,
            Rect {
                x: 60,
                y: 60,
                w: 4,
                h: 4,
            },
            "x",
        );
        draw_label(
            &mut f,
            Rect {
                x: 0,
                y: 0,
                w: 64,
                h: 64,
            },
            "",
        );
        assert!(
            lit(
                &f,
                Rect {
                    x: 0,
                    y: 0,
                    w: 64,
                    h: 64
                }
            ) > 0
        );
    }
}
