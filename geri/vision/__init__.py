"""Images and video for vision models: checked, converted and cut into frames before sending.

`image` reads an image from a file, a URL or stdin, checks it by its content with Pillow (the
real format, the size, a pixel cap against decompression bombs) and converts and resizes it to
what the chosen provider accepts. `video` picks frames from a video with PyAV, at scene changes
or a fixed rate, with a cap. `processor` sends them to a vision model through the engine and
merges the answers with timestamps; the CLI and the daemon both use it.
"""
