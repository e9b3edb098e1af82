"""Room hardware behind two small protocols, `Lights` and `Audio` (`base`), with the simulated
room (`simulated`, the demo) and the real drivers (`hue`, `vlc`). The values that cross them
live in `roomctl.room`."""
