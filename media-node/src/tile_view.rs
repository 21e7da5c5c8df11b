//! How a viewer's page shows a pulled video (issue 18, `PUT /v1/sessions/{id}/tracks/view`),
//! and which simulcast layer fits its tile. Pure: the media loop keeps a [`TileView`] per pull
//! and each publication's layer heights (from its VP8 keyframes), and asks [`rank_for_height`]
//! on its allocation tick.

use crate::layers::MAX_LAYERS;

/// The tallest tile a page may name, in device pixels (an 8K screen).
pub const MAX_HEIGHT: u32 = 4320;

/// A pull's tile as its page last said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileView {
    /// On screen: false for a tile scrolled off, a hidden tab, a tile the page does not draw.
    pub shown: bool,
    /// Its height in device pixels; `None`: no limit (the layer the page asked for).
    pub height: Option<u32>,
    /// Pinned or shown large: before the other cameras when the link is short.
    pub pinned: bool,
}

impl Default for TileView {
    /// Until its page says otherwise a pull is shown, at the layer asked for.
    fn default() -> Self {
        Self {
            shown: true,
            height: None,
            pinned: false,
        }
    }
}

/// A layer this much shorter than the tile still serves it (×10): 10 % of upscaling is not seen,
/// and a 360-pixel tile takes a 352-pixel layer rather than the next, four times as costly.
const COVER_TENTHS: u64 = 9;

/// The lowest layer (rank) whose height covers a tile `want` pixels high, given each offered
/// layer's height where known (`heights[r]`, low to high; the publisher's rid order). Unknown
/// heights are inferred from a known one, each rank doubling the one below it (browsers send
/// q/h/f at 1/4, 1/2 and full size). No layer tall enough: the top one. `None`: no height known
/// yet (no cap).
pub fn rank_for_height(heights: &[Option<u32>], want: u32) -> Option<usize> {
    let n = heights.len().min(MAX_LAYERS);
    let (k, hk) = heights[..n]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(r, h)| h.map(|h| (r, u64::from(h))))?;
    let height = |r: usize| -> u64 {
        match heights[r] {
            Some(h) => u64::from(h),
            None if r > k => hk << (r - k),
            None => hk >> (k - r),
        }
    };
    (0..n)
        .find(|&r| height(r) * 10 >= u64::from(want) * COVER_TENTHS)
        .or(Some(n - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 640x360 camera's q/h/f.
    const CAM: [Option<u32>; 3] = [Some(90), Some(180), Some(360)];

    #[test]
    fn a_tile_gets_the_lowest_layer_as_tall_as_it() {
        assert_eq!(rank_for_height(&CAM, 60), Some(0));
        assert_eq!(rank_for_height(&CAM, 90), Some(0));
        assert_eq!(rank_for_height(&CAM, 150), Some(1));
        assert_eq!(rank_for_height(&CAM, 200), Some(1), "within 10 %");
        assert_eq!(rank_for_height(&CAM, 201), Some(2));
        assert_eq!(rank_for_height(&CAM, 1080), Some(2), "none taller: the top");
    }

    #[test]
    fn unknown_layer_heights_follow_from_a_known_one_and_none_known_sets_no_cap() {
        // Only h seen so far (a new pull's first keyframe): q is half of it, f twice.
        let h_only = [None, Some(180), None];
        assert_eq!(rank_for_height(&h_only, 90), Some(0));
        assert_eq!(rank_for_height(&h_only, 300), Some(2));
        let f_only = [None, None, Some(720)];
        assert_eq!(rank_for_height(&f_only, 180), Some(0));
        assert_eq!(rank_for_height(&f_only, 360), Some(1));
        assert_eq!(rank_for_height(&[None, None, None], 100), None);
        assert_eq!(rank_for_height(&[], 100), None);
        // A single layer (no simulcast) is its own top.
        assert_eq!(rank_for_height(&[Some(720)], 100), Some(0));
    }
}
