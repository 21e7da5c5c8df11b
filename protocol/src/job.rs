//! The recording manifest a media node leaves in storage for the uploader.
