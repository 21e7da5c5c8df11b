//! Where each picture goes: a pure function of who is in the meeting, who speaks, who shares a
//! screen and the canvas size. Speaker view (the main picture large, the others in a strip below)
//! or a grid.

/// A rectangle of the canvas, in pixels. Every edge is even: the chroma planes of I420 are half
/// size, so an odd edge would smear a tile's colour into its neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// The largest `aw:ah` rectangle centred in `self`.
    pub fn fit(self, aw: u32, ah: u32) -> Rect {
        if aw == 0 || ah == 0 || self.w == 0 || self.h == 0 {
            return Rect { w: 0, h: 0, ..self };
        }
        let (w, h) = if u64::from(self.w) * u64::from(ah) <= u64::from(self.h) * u64::from(aw) {
            (
                self.w,
                (u64::from(self.w) * u64::from(ah) / u64::from(aw)) as u32,
            )
        } else {
            (
                (u64::from(self.h) * u64::from(aw) / u64::from(ah)) as u32,
                self.h,
            )
        };
        let (w, h) = (even(w), even(h));
        Rect {
            x: even(self.x + (self.w - w) / 2),
            y: even(self.y + (self.h - h) / 2),
            w,
            h,
        }
    }
}

fn even(v: u32) -> u32 {
    v & !1
}

/// A picture of the meeting: a participant's camera or the screen they share. Participant ids are
/// the room's opaque ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Camera(String),
    Screen(String),
}

impl Source {
    pub fn participant(&self) -> &str {
        match self {
            Source::Camera(p) | Source::Screen(p) => p,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    /// Shown on the tile (memory only; never logged).
    pub name: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The shared screen, else the active speaker, large; everyone else in a strip below.
    #[default]
    Speaker,
    Grid,
}

/// Who is in the picture, in roster order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scene {
    pub people: Vec<Person>,
    /// The active speaker (the node's dominant speaker).
    pub speaker: Option<String>,
    /// Who shares a screen, if anyone.
    pub screen: Option<String>,
    pub mode: Mode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tile {
    pub source: Source,
    pub rect: Rect,
    /// The name drawn on the tile.
    pub label: String,
}

/// Pictures are laid out 16:9 (cameras and screens are letterboxed into their tile).
const ASPECT: (u32, u32) = (16, 9);

/// The strip below the main picture holds tiles a fifth of the canvas high.
const STRIP_SHARE: u32 = 5;

/// The tiles of `scene` on a `width` x `height` canvas, main picture first.
pub fn layout(scene: &Scene, width: u32, height: u32) -> Vec<Tile> {
    let name = |id: &str| {
        scene
            .people
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    let screen = scene
        .screen
        .as_ref()
        .filter(|s| scene.people.iter().any(|p| &p.id == *s));
    let mut sources: Vec<Source> = Vec::new();
    if let Some(s) = screen {
        sources.push(Source::Screen(s.clone()));
    }
    sources.extend(scene.people.iter().map(|p| Source::Camera(p.id.clone())));
    if sources.is_empty() {
        return Vec::new();
    }
    let canvas = Rect {
        x: 0,
        y: 0,
        w: even(width),
        h: even(height),
    };
    let tile = |source: Source, rect: Rect| Tile {
        label: name(source.participant()),
        source,
        rect,
    };
    match scene.mode {
        Mode::Grid => grid(canvas, sources.len())
            .into_iter()
            .zip(sources)
            .map(|(rect, s)| tile(s, rect))
            .collect(),
        Mode::Speaker => {
            // The main picture: the screen, else the speaker (if still here), else the first.
            let main = if screen.is_some() {
                0
            } else {
                scene
                    .speaker
                    .as_ref()
                    .and_then(|sp| {
                        sources
                            .iter()
                            .position(|s| s == &Source::Camera(sp.clone()))
                    })
                    .unwrap_or(0)
            };
            let main_source = sources.remove(main);
            if sources.is_empty() {
                return vec![tile(main_source, canvas.fit(ASPECT.0, ASPECT.1))];
            }
            let strip_h = even(canvas.h / STRIP_SHARE);
            let main_rect = Rect {
                h: canvas.h - strip_h,
                ..canvas
            }
            .fit(ASPECT.0, ASPECT.1);
            let tile_w = even(strip_h * ASPECT.0 / ASPECT.1);
            let fits = (canvas.w / tile_w.max(2)).max(1) as usize;
            let shown = sources.len().min(fits) as u32;
            let left = even((canvas.w - shown * tile_w) / 2);
            let mut tiles = vec![tile(main_source, main_rect)];
            for (i, s) in sources.into_iter().take(fits).enumerate() {
                let cell = Rect {
                    x: left + i as u32 * tile_w,
                    y: canvas.h - strip_h,
                    w: tile_w,
                    h: strip_h,
                };
                tiles.push(tile(s, cell.fit(ASPECT.0, ASPECT.1)));
            }
            tiles
        }
    }
}

/// `n` cells over `canvas`, as square a grid as fits, each with a 16:9 tile centred in it.
fn grid(canvas: Rect, n: usize) -> Vec<Rect> {
    let n = n as u32;
    let cols = (1..=n).find(|c| c * c >= n).unwrap_or(1);
    let rows = n.div_ceil(cols);
    let (cw, ch) = (canvas.w / cols, canvas.h / rows);
    (0..n)
        .map(|i| {
            let cell = Rect {
                x: canvas.x + (i % cols) * cw,
                y: canvas.y + (i / cols) * ch,
                w: cw,
                h: ch,
            };
            cell.fit(ASPECT.0, ASPECT.1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(n: usize) -> Vec<Person> {
        (0..n)
            .map(|i| Person {
                id: format!("p{i}"),
                name: format!("Person {i}"),
            })
            .collect()
    }

    fn no_overlap(tiles: &[Tile]) {
        for (i, a) in tiles.iter().enumerate() {
            for b in &tiles[i + 1..] {
                let (a, b) = (a.rect, b.rect);
                let apart =
                    a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn the_speaker_is_large_and_the_others_in_a_strip_below() {
        let scene = Scene {
            people: people(3),
            speaker: Some("p1".into()),
            ..Default::default()
        };
        let tiles = layout(&scene, 1280, 720);
        assert_eq!(tiles.len(), 3);
        assert_eq!(tiles[0].source, Source::Camera("p1".into()));
        assert_eq!(tiles[0].label, "Person 1");
        assert!(tiles[0].rect.w > 3 * tiles[1].rect.w);
        assert!(
            tiles[1..]
                .iter()
                .all(|t| t.rect.y >= tiles[0].rect.y + tiles[0].rect.h)
        );
        no_overlap(&tiles);
    }

    #[test]
    fn a_shared_screen_is_the_main_picture_and_every_camera_goes_to_the_strip() {
        let scene = Scene {
            people: people(2),
            speaker: Some("p1".into()),
            screen: Some("p0".into()),
            ..Default::default()
        };
        let tiles = layout(&scene, 1280, 720);
        assert_eq!(tiles[0].source, Source::Screen("p0".into()));
        assert_eq!(tiles.len(), 3);
        no_overlap(&tiles);
    }

    #[test]
    fn a_speaker_who_left_falls_back_to_the_first_and_one_person_fills_the_canvas() {
        let scene = Scene {
            people: people(1),
            speaker: Some("gone".into()),
            ..Default::default()
        };
        let tiles = layout(&scene, 1280, 720);
        assert_eq!(
            tiles,
            vec![Tile {
                source: Source::Camera("p0".into()),
                rect: Rect {
                    x: 0,
                    y: 0,
                    w: 1280,
                    h: 720
                },
                label: "Person 0".into(),
            }]
        );
        assert!(layout(&Scene::default(), 1280, 720).is_empty());
    }

    #[test]
    fn a_crowd_fills_the_strip_and_no_more() {
        let scene = Scene {
            people: people(12),
            ..Default::default()
        };
        let tiles = layout(&scene, 1280, 720);
        assert_eq!(tiles.len(), 1 + 1280 / 256);
        no_overlap(&tiles);
        assert!(
            tiles
                .iter()
                .all(|t| t.rect.x + t.rect.w <= 1280 && t.rect.y + t.rect.h <= 720)
        );
    }

    #[test]
    fn a_grid_is_square_and_every_edge_is_even() {
        for n in 1..=9 {
            let scene = Scene {
                people: people(n),
                mode: Mode::Grid,
                ..Default::default()
            };
            let tiles = layout(&scene, 1920, 1080);
            assert_eq!(tiles.len(), n);
            no_overlap(&tiles);
            for t in &tiles {
                let r = t.rect;
                assert!([r.x, r.y, r.w, r.h].iter().all(|v| v % 2 == 0), "{r:?}");
                assert!(r.x + r.w <= 1920 && r.y + r.h <= 1080);
            }
        }
        let nine = layout(
            &Scene {
                people: people(9),
                mode: Mode::Grid,
                ..Default::default()
            },
            1920,
            1080,
        );
        assert_eq!(
            nine[0].rect,
            Rect {
                x: 0,
                y: 0,
                w: 640,
                h: 360
            }
        );
    }
}
