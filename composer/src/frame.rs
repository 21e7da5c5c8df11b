//! Pictures in I420 (8-bit Y, then U and V at half width and height), what ffmpeg's decoders give
//! and its encoder takes, and the few operations composing needs: fill, and scale one picture
//! into a rectangle of another (bilinear, letterboxed).

use crate::layout::Rect;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// Y plane, then U, then V.
    pub data: Vec<u8>,
}

/// A colour as Y, U, V.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Yuv(pub u8, pub u8, pub u8);

pub const BLACK: Yuv = Yuv(16, 128, 128);

impl Frame {
    /// A `width` x `height` picture of one colour (sizes rounded down to even).
    pub fn filled(width: u32, height: u32, c: Yuv) -> Frame {
        let (width, height) = (width & !1, height & !1);
        let (y, uv) = ((width * height) as usize, (width * height / 4) as usize);
        let mut data = vec![c.0; y + 2 * uv];
        data[y..y + uv].fill(c.1);
        data[y + uv..].fill(c.2);
        Frame {
            width,
            height,
            data,
        }
    }

    /// The picture's bytes as I420 of `width` x `height`, or None if the length does not match.
    pub fn from_i420(width: u32, height: u32, data: Vec<u8>) -> Option<Frame> {
        (width.is_multiple_of(2)
            && height.is_multiple_of(2)
            && data.len() == i420_len(width, height))
        .then_some(Frame {
            width,
            height,
            data,
        })
    }

    /// (offset, width, height) of plane 0 (Y), 1 (U) or 2 (V).
    fn plane(&self, p: usize) -> (usize, u32, u32) {
        let y = (self.width * self.height) as usize;
        match p {
            0 => (0, self.width, self.height),
            1 => (y, self.width / 2, self.height / 2),
            _ => (y + y / 4, self.width / 2, self.height / 2),
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> Yuv {
        let get = |p: usize, x: u32, y: u32| {
            let (off, w, _) = self.plane(p);
            self.data[off + (y * w + x) as usize]
        };
        Yuv(get(0, x, y), get(1, x / 2, y / 2), get(2, x / 2, y / 2))
    }

    /// Paints `rect` (clipped to the picture) in one colour.
    pub fn fill_rect(&mut self, rect: Rect, c: Yuv) {
        let r = self.clip(rect);
        for (p, v) in [(0, c.0), (1, c.1), (2, c.2)] {
            let (off, w, _) = self.plane(p);
            let s = if p == 0 { 1 } else { 2 };
            for y in r.y / s..(r.y + r.h) / s {
                let row = off + (y * w) as usize;
                self.data[row + (r.x / s) as usize..row + ((r.x + r.w) / s) as usize].fill(v);
            }
        }
    }

    /// Darkens `rect` (a label's background): luma to a third, chroma towards grey.
    pub fn shade_rect(&mut self, rect: Rect) {
        let r = self.clip(rect);
        for p in 0..3 {
            let (off, w, _) = self.plane(p);
            let s = if p == 0 { 1 } else { 2 };
            for y in r.y / s..(r.y + r.h) / s {
                let row = off + (y * w) as usize;
                for v in &mut self.data[row + (r.x / s) as usize..row + ((r.x + r.w) / s) as usize]
                {
                    *v = if p == 0 {
                        16 + (*v).saturating_sub(16) / 3
                    } else {
                        (128 + (i16::from(*v) - 128) / 3) as u8
                    };
                }
            }
        }
    }

    /// Sets one luma pixel (text).
    pub fn set_luma(&mut self, x: u32, y: u32, v: u8) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) as usize;
            self.data[i] = v;
        }
    }

    fn clip(&self, r: Rect) -> Rect {
        let x = r.x.min(self.width) & !1;
        let y = r.y.min(self.height) & !1;
        Rect {
            x,
            y,
            w: (r.w.min(self.width - x)) & !1,
            h: (r.h.min(self.height - y)) & !1,
        }
    }

    /// Draws `src` into `rect` of this picture, scaled to fit with its aspect kept (bars in
    /// black around it).
    pub fn draw_scaled(&mut self, src: &Frame, rect: Rect) {
        let rect = self.clip(rect);
        self.fill_rect(rect, BLACK);
        let fit = rect.fit(src.width, src.height);
        if fit.w == 0 || fit.h == 0 {
            return;
        }
        for p in 0..3 {
            let s = if p == 0 { 1 } else { 2 };
            let (soff, sw, sh) = src.plane(p);
            let (doff, dw, _) = self.plane(p);
            let (dx, dy, w, h) = (fit.x / s, fit.y / s, fit.w / s, fit.h / s);
            scale_plane(
                &src.data[soff..soff + (sw * sh) as usize],
                sw,
                sh,
                &mut self.data[doff..],
                dw,
                (dx, dy, w, h),
            );
        }
    }
}

pub fn i420_len(width: u32, height: u32) -> usize {
    (width * height + width * height / 2) as usize
}

/// Bilinear scaling of one plane into a `(x, y, w, h)` window of `dst` (row stride `dst_w`), in
/// 16.16 fixed point.
fn scale_plane(
    src: &[u8],
    sw: u32,
    sh: u32,
    dst: &mut [u8],
    dst_w: u32,
    win: (u32, u32, u32, u32),
) {
    let (dx, dy, w, h) = win;
    if sw == 0 || sh == 0 {
        return;
    }
    let step_x = ((u64::from(sw) << 16) / u64::from(w.max(1))) as u32;
    let step_y = ((u64::from(sh) << 16) / u64::from(h.max(1))) as u32;
    for j in 0..h {
        // Sample at pixel centres.
        let fy = (j * step_y + step_y / 2).saturating_sub(1 << 15);
        let y0 = (fy >> 16).min(sh - 1);
        let y1 = (y0 + 1).min(sh - 1);
        let wy = fy & 0xffff;
        let (r0, r1) = ((y0 * sw) as usize, (y1 * sw) as usize);
        let out = ((dy + j) * dst_w + dx) as usize;
        for i in 0..w {
            let fx = (i * step_x + step_x / 2).saturating_sub(1 << 15);
            let x0 = (fx >> 16).min(sw - 1);
            let x1 = (x0 + 1).min(sw - 1);
            let wx = fx & 0xffff;
            let lerp =
                |a: u8, b: u8, t: u32| (u32::from(a) * (0x10000 - t) + u32::from(b) * t) >> 16;
            let top = lerp(src[r0 + x0 as usize], src[r0 + x1 as usize], wx);
            let bottom = lerp(src[r1 + x0 as usize], src[r1 + x1 as usize], wx);
            dst[out + i as usize] = ((top * (0x10000 - wy) + bottom * wy) >> 16) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_scaled_into_a_tile_keeps_its_colour_and_its_aspect() {
        let red = Yuv(81, 90, 240);
        let src = Frame::filled(320, 180, red);
        let mut canvas = Frame::filled(1280, 720, Yuv(200, 128, 128));
        // A 4:3 tile: the 16:9 picture gets bars above and below.
        let tile = Rect {
            x: 100,
            y: 100,
            w: 400,
            h: 300,
        };
        canvas.draw_scaled(&src, tile);
        assert_eq!(canvas.pixel(300, 250), red);
        assert_eq!(canvas.pixel(300, 102), BLACK, "a bar");
        assert_eq!(
            canvas.pixel(90, 250),
            Yuv(200, 128, 128),
            "outside the tile untouched"
        );
    }

    #[test]
    fn scaling_keeps_a_gradient_in_order() {
        let mut src = Frame::filled(64, 16, BLACK);
        for x in 0..64 {
            for y in 0..16 {
                src.set_luma(x, y, (x * 4) as u8);
            }
        }
        let mut dst = Frame::filled(256, 64, BLACK);
        dst.draw_scaled(
            &src,
            Rect {
                x: 0,
                y: 0,
                w: 256,
                h: 64,
            },
        );
        let row: Vec<u8> = (0..256).map(|x| dst.pixel(x, 32).0).collect();
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "monotonic");
        assert!(row[0] < 8 && row[255] > 245);
    }

    #[test]
    fn wrong_sizes_are_refused_and_rects_are_clipped() {
        assert!(Frame::from_i420(4, 4, vec![0; 23]).is_none());
        assert!(Frame::from_i420(4, 4, vec![0; 24]).is_some());
        let mut f = Frame::filled(8, 8, BLACK);
        f.fill_rect(
            Rect {
                x: 6,
                y: 6,
                w: 100,
                h: 100,
            },
            Yuv(235, 128, 128),
        );
        assert_eq!(f.pixel(7, 7).0, 235);
        assert_eq!(f.pixel(5, 5).0, 16);
    }
}
