//! The composer's heart, with no I/O: pictures, sound and scene changes in; one canvas per video
//! tick and 20 ms of mixed sound per audio tick out. The host (`composition.rs`) owns the clock
//! and ffmpeg.

use std::collections::HashMap;

use crate::frame::{BLACK, Frame, Yuv};
use crate::layout::{Scene, Source, layout};
use crate::mixer::{FRAME, Mixer};
use crate::text::draw_label;

/// A tile whose source has sent no picture yet (or has no camera) shows this grey.
const WAITING: Yuv = Yuv(60, 128, 128);

pub struct Compositor {
    width: u32,
    height: u32,
    scene: Scene,
    /// The latest picture of each source.
    latest: HashMap<Source, Frame>,
    mixer: Mixer,
}

impl Compositor {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width: width & !1,
            height: height & !1,
            scene: Scene::default(),
            latest: HashMap::new(),
            mixer: Mixer::default(),
        }
    }

    /// A new scene: who is in, who speaks, who shares. Pictures and sound of those who left are
    /// dropped.
    pub fn set_scene(&mut self, scene: Scene) {
        for gone in self
            .scene
            .people
            .iter()
            .filter(|p| !scene.people.iter().any(|q| q.id == p.id))
        {
            self.mixer.remove(&gone.id);
        }
        self.latest
            .retain(|s, _| scene.people.iter().any(|p| p.id == s.participant()));
        if scene.screen.is_none() {
            self.latest.retain(|s, _| matches!(s, Source::Camera(_)));
        }
        self.scene = scene;
    }

    pub fn picture_in(&mut self, source: Source, frame: Frame) {
        if self
            .scene
            .people
            .iter()
            .any(|p| p.id == source.participant())
        {
            self.latest.insert(source, frame);
        }
    }

    pub fn sound_in(&mut self, participant: &str, samples: &[i16]) {
        if self.scene.people.iter().any(|p| p.id == participant) {
            self.mixer.push(participant, samples);
        }
    }

    /// The canvas now.
    pub fn picture(&self) -> Frame {
        let mut canvas = Frame::filled(self.width, self.height, BLACK);
        for tile in layout(&self.scene, self.width, self.height) {
            match self.latest.get(&tile.source) {
                Some(f) => canvas.draw_scaled(f, tile.rect),
                None => canvas.fill_rect(tile.rect, WAITING),
            }
            draw_label(&mut canvas, tile.rect, &tile.label);
        }
        canvas
    }

    /// The next 20 ms of sound.
    pub fn sound(&mut self) -> [i16; FRAME] {
        self.mixer.mix()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Person;

    fn scene(ids: &[&str], speaker: &str) -> Scene {
        Scene {
            people: ids
                .iter()
                .map(|i| Person {
                    id: i.to_string(),
                    name: String::new(),
                })
                .collect(),
            speaker: Some(speaker.into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_speakers_picture_fills_the_main_area_and_follows_the_speaker() {
        let (red, blue) = (Yuv(81, 90, 240), Yuv(41, 240, 110));
        let mut c = Compositor::new(640, 360);
        c.set_scene(scene(&["a", "b"], "a"));
        c.picture_in(Source::Camera("a".into()), Frame::filled(160, 90, red));
        c.picture_in(Source::Camera("b".into()), Frame::filled(160, 90, blue));
        assert_eq!(c.picture().pixel(320, 140), red);
        c.set_scene(scene(&["a", "b"], "b"));
        assert_eq!(c.picture().pixel(320, 140), blue);
        // Someone who never sent a picture: a grey tile, not a stale one.
        c.set_scene(scene(&["a", "b", "c"], "c"));
        assert_eq!(c.picture().pixel(320, 140), WAITING);
    }

    #[test]
    fn those_who_left_are_neither_seen_nor_heard() {
        let mut c = Compositor::new(640, 360);
        c.set_scene(scene(&["a", "b"], "a"));
        c.sound_in("b", &[100; FRAME]);
        c.picture_in(
            Source::Camera("b".into()),
            Frame::filled(16, 16, Yuv(200, 50, 50)),
        );
        c.set_scene(scene(&["a"], "a"));
        assert!(c.sound().iter().all(|&s| s == 0));
        assert!(c.latest.is_empty());
        c.sound_in("stranger", &[100; FRAME]);
        assert!(c.sound().iter().all(|&s| s == 0));
    }
}
