// Passwords that attackers try first: the top of the published breach corpora (RockYou,
// the yearly "worst passwords" lists, credential-stuffing dictionaries), keyboard walks, digit
// runs, and the favourite pattern of all, a common word or name followed by digits, a year or
// "!". Written down here rather than fetched, so a check costs a Set lookup and works offline.
// Everything is lower case: compare a lower-cased password (password-policy.ts does).

/** Exactly as they appear at the top of breach lists. */
const LISTED = `
123456 123456789 12345678 12345 1234567 1234567890 1234 111111 123123 000000 password password1
password12 password123 password1234 password12345 password123456 passw0rd p@ssw0rd p@ssword pa$$word
pa55word pass1234 pass123 passpass passw0rd1 p@ssw0rd1 p@$$w0rd passwort motdepasse contrasena
contraseña senha parola wachtwoord salasana haslo qwerty qwerty1 qwerty12 qwerty123 qwerty1234
qwerty12345 qwerty123456 qwertyu qwertyui qwertyuiop qwertyuiop1 qwertyuiop123 qwert qwert123
qwer1234 1234qwer qweasd qweasdzxc qweasd123 qweqwe qweqweqwe qwe123 qwe123456 123qwe 123qweasd
123qweasdzxc qazwsx qazwsxedc qazwsxedcrfv qaz123 1qaz2wsx 1qaz2wsx3edc 1qaz2wsx3edc4rfv 1qazxsw2
1qaz@wsx !qaz2wsx !qaz@wsx zaq12wsx zaq1xsw2 zaq1zaq1 zaq12wsxcde3 2wsx3edc 1q2w3e 1q2w3e4r
1q2w3e4r5t 1q2w3e4r5t6y 1q2w3e4r5t6y7u q1w2e3r4 q1w2e3r4t5 q1w2e3r4t5y6 12qwaszx 12qwas 1qa2ws3ed
asdf asdf1234 asdfasdf asdfgh asdfghj asdfghjk asdfghjkl asdfghjkl1 asdfghjkl; asd123 asdasd
asdasdasd zxcvbn zxcvbnm zxcvbnm1 zxcvbnm123 zxc123 zxcvb azerty azerty123 azertyuiop wxcvbn
qwertz qwertz123 qwertzuiop ytrewq poiuytrewq lkjhgfdsa mnbvcxz 0987654321 9876543210 987654321
87654321 7654321 654321 54321 0123456789 01234567 012345 1234567891 12345678910 123456789a
123456789q 123456a 123456q 12345a 12345q a12345 a123456 a1234567 a12345678 a123456789 q123456
abc123 abc1234 abc12345 abc123456 abcd1234 abcd123 1234abcd abcdef abcdefg abcdefgh abcdefghi
abcdefghij abcdefghijk abcdefghijklmnop abcdefghijklmnopqrstuvwxyz abc abc123abc 123abc 123456abc
aaa111 aa123456 aa12345678 a1b2c3 a1b2c3d4 a1b2c3d4e5 1a2b3c 1a2b3c4d abcabc abcabcabc
123123123 123123123123 123321 1234321 12344321 123454321 1234554321 123654 123654789 147258
147258369 147852 147852369 159357 159753 159951 258456 369258147 741852 741852963 753951 789456
789456123 789123 963852741 951753 852456 121212 12121212 112233 11223344 1122334455 121314
12341234 123412341234 12345123 1234512345 123456123456 1212 1313 2020 6969 696969 69696969 420420
111222 111222333 100200 101010 10101010 110110 131313 141414 151515 161616 171717 181818 191919
202020 212121 232323 242424 252525 262626 272727 282828 292929 303030 313131 123abc123 password!
password1! password123! passw0rd! p@ssw0rd! p@ssw0rd123 p@ssword1 p@ssword123 passwd passwd123
pass pass12345 pass123456 pass@123 password@123 password@1 admin admin1 admin12 admin123 admin1234
admin12345 admin123456 admin@123 admin! administrator administrator1 root root123 toor rootroot
root1234 changeme changeme1 changeme123 welcome welcome1 welcome12 welcome123 welcome1234 welcome!
letmein letmein1 letmein123 letmein! trustno1 trustno1! iloveyou iloveyou1 iloveyou2 iloveyou12
iloveyou123 iloveu iloveu2 ilove you iloveyou! loveyou love123 lovely lovelove loveme loveme1
sunshine sunshine1 princess princess1 princess12 princess123 monkey monkey1 monkey123 dragon
dragon1 dragon123 football football1 football123 baseball baseball1 basketball soccer hockey
master master1 master123 shadow shadow1 superman superman1 batman batman1 michael michael1 jordan
jordan23 jennifer hunter hunter2 ranger buster tigger charlie charlie1 freedom freedom1 whatever
whatever1 starwars starwars1 computer computer1 internet secret secret1 secret123 test test1
test12 test123 test1234 test12345 testing testing123 tester guest guest123 user user123 demo demo123
login login123 access access14 default default1 master12 hello hello1 hello123 hello1234 helloworld
hello world hello123456 1234567890q qwerty7 qwerty11 111111111 1111111111 11111111 1111111 11111
0000000000 00000000 0000000 00000 222222 333333 444444 555555 666666 777777 888888 999999 2222222
88888888 7777777 99999999 123456789012 1234567890123 12345678901 q1w2e3r4t5y6u7i8o9p0 1q2w3e4r5t6y7u8i9o0p
zaq!2wsx 1qaz!qaz monkey12 football12 michael12 letmein12 superman123 batman123 killer killer1
pepper ginger cheese cookie cookie1 banana orange apple chocolate butterfly flower flower1 summer
summer1 winter spring autumn mustang mustang1 ferrari porsche corvette mercedes harley yamaha
matrix matrix1 merlin cowboy cowboys eagles yankees lakers chelsea liverpool arsenal barcelona
realmadrid juventus manchester manutd soccer1 purple yellow orange1 silver golden diamond
pokemon pokemon1 naruto naruto1 minecraft minecraft1 fortnite roblox roblox123 pikachu sasuke
snoopy garfield scooby spiderman ironman hulk thor avengers marvel zelda mario nintendo playstation
xbox360 iphone samsung google google1 facebook youtube twitter instagram linkedin netflix
qwerty!@# !@#$%^ !@#$%^&* !@#$%^&*() 1q2w3e!q 1qaz2wsx! password$ asdf;lkj asdfjkl; zxcvasdf
blink182 myspace1 myspace 123456789abc abc123!@# bitch fuckyou fuckyou1 fuckoff asshole
sexy sexy123 hottie lovers love12 babygirl babygirl1 angel angel1 angels jesus jesus1 god
godisgood jesuschrist blessed blessed1 heaven faith family family1 friends friends1 forever
forever1 together nicole daniel daniel1 jessica ashley ashley1 andrew joshua matthew anthony
amanda robert thomas jasmine michelle tiffany taylor hannah samantha charlotte william
liverpool1 chelsea1 arsenal1 qwertyqwerty asdfasdfasdf zxczxc zxczxczxc 123zxc zxc123456
q1w2e3 aa123123 a1a1a1 a12345a 1a1a1a 1234aa 12345678a 12345678q 1234567a 1234567q 12345qwert
qwert12345 12345qwerty 123456qwerty qwerty123456789 qwerty1234567890 1234567890qwerty
1qaz1qaz 2wsx2wsx zaq1@wsx nopassword nopass mypassword mypassword1 yourpassword thepassword
newpassword newpassword1 oldpassword password2 password3 password01 password11 password99
superuser supervisor sysadmin webmaster manager office security private public temp temp123
temppass temporary backup oracle mysql postgres database server service support system
system123 cisco cisco123 router modem wireless wifi wifi1234 internet1 secure secure123
`;

/** Words and names that people decorate with digits, a year or "!" (see SUFFIXES). */
const BASES = `
password passw0rd p@ssw0rd pass qwerty qwertyuiop asdfgh asdfghjkl zxcvbnm abc abcd iloveyou
iloveu love lover loveme admin root welcome letmein hello monkey dragon shadow master sunshine
princess football baseball soccer hockey basketball batman superman spiderman starwars pokemon
naruto minecraft computer internet secret test guest user login summer winter spring autumn
january february march april may june july august september october november december monday
friday freedom whatever trustno chocolate cookie banana apple orange cherry peach pepper ginger
flower butterfly rainbow angel angels jesus blessed family friends forever mother father mommy
daddy baby babygirl babyboy sweety honey sweetheart darling kitty kitten puppy doggy tiger lion
bear wolf eagle falcon dolphin panther cheetah killer hunter ranger soldier pirate ninja samurai
wizard merlin matrix hacker gamer player music guitar piano dance rock metal punk rap hiphop
michael jordan jennifer jessica ashley daniel david james john robert william richard joseph
thomas charles christopher matthew anthony mark andrew joshua kevin brian george edward ronald
timothy jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon
benjamin samuel frank gregory raymond alexander patrick jack dennis jerry tyler aaron henry adam
peter nathan zachary kyle walter harold carl arthur gerald roger keith jeremy lawrence sean
christian albert joe ethan austin jesse willie billy bruce bryan ralph roy jordan eugene wayne
louis dylan alan juan gabriel logan randy vincent russell bobby philip johnny mary patricia linda
barbara elizabeth susan sarah karen nancy lisa betty margaret sandra donna carol ruth sharon
michelle laura kimberly deborah amy angela melissa brenda anna rebecca virginia kathleen pamela
martha debra amanda stephanie carolyn christine marie janet catherine frances ann joyce diane
alice julie heather teresa doris gloria evelyn jean cheryl mildred katherine joan judith rose
janice kelly nicole judy christina kathy theresa beverly denise tammy irene jane lori rachel
marilyn andrea kathryn louise sara hannah samantha charlotte olivia emma sophia isabella ava
mia emily abigail madison chloe natalie lily grace victoria zoe tiffany jasmine brittany taylor
chelsea arsenal liverpool barcelona madrid juventus milan united city yankees lakers cowboys
eagles patriots steelers packers raiders bulldogs tigers lions bears panthers dolphins giants
ferrari porsche mustang corvette harley honda toyota nissan mercedes bmw audi volvo yamaha
london paris berlin madrid rome moscow tokyo newyork chicago boston texas california florida
america canada mexico brazil france germany italy spain england scotland ireland india china
japan russia poland
`;

/** Digits, years and punctuation people append (the base alone is in the list too). */
const SUFFIXES = ['', '1', '2', '7', '11', '12', '13', '21', '22', '23', '69', '77', '99', '00', '01', '007', '100', '123', '321', '1234', '12345', '123456', '1234567', '12345678', '123456789', '!', '!!', '1!', '12!', '123!', '@123', '#1', '$', '.'];
const YEARS = Array.from({ length: 2030 - 1950 + 1 }, (_, i) => String(1950 + i));

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

const LISTED_SET: ReadonlySet<string> = new Set(words(LISTED));
const BASE_SET: ReadonlySet<string> = new Set(words(BASES));
const ENDINGS = [...new Set([...SUFFIXES, ...YEARS, ...YEARS.map((y) => y.slice(2))])];
const PREFIXES = ['1', '123'];

/**
 * Whether a lower-cased password is on the list or is a listed base word with a common
 * ending ("summer2024", "dragon!"), prefix ("1password") or doubled ("monkeymonkey"). Checked
 * by taking the password apart rather than by expanding every combination (tens of
 * thousands of strings) into memory.
 */
export function isCommonPassword(lower: string): boolean {
  if (LISTED_SET.has(lower)) return true;
  for (const ending of ENDINGS) {
    if (lower.endsWith(ending) && BASE_SET.has(lower.slice(0, lower.length - ending.length))) return true;
  }
  for (const prefix of PREFIXES) {
    if (lower.startsWith(prefix) && BASE_SET.has(lower.slice(prefix.length))) return true;
  }
  const half = lower.length / 2;
  return Number.isInteger(half) && lower.slice(0, half) === lower.slice(half) && BASE_SET.has(lower.slice(0, half));
}
