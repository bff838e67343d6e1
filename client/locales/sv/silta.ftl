# Silta: det som människor läser, på svenska. Varje meddelande finns också i ../en/silta.ftl och
# ../fi/silta.ftl (ett test kontrollerar det). Värden inom { $klamrar } kommer från programmet.

## Prefix för det som programmet skriver ut som fel.

prefix-error = fel:
prefix-hint = tips:
prefix-warning = varning:

## Hjälp (`silta --help` och varje kommandos beskrivning).

help-about =
    silta: skicka och ta emot totalsträckskrypterade remisser om möjliga offer för människohandel
    mellan förläggningar och hjälpsystemet för offer för människohandel i Finland. Förmedlingsservern
    emellan sparar endast krypterat innehåll och en leveranslogg som granskare verifierar.

    Förläggningarna kör `silta daemon` (formulär läggs i outbox/, meddelanden skrivs i inbox/);
    hjälpsystemet läser med `silta inbox` och svarar med svarskommandona; granskarna kontrollerar
    leveransloggen med `silta audit`.
help-exit-codes =
    Slutkoder:
      0   klart
      1   misslyckades (servern vägrade, ett meddelande avvisades, ett kvitto stämde inte, ...)
      2   leveransloggen kunde INTE verifieras (audit verify): behåll allt som det är och rapportera det
      64  användnings- eller konfigurationsfel (en flagga, konfigurationsfilen, en fil som saknas)
      65  ogiltigt formulär: ingenting skickades (meddelandet anger fältet och varför)
      69  servern kan inte nås eller dess svar gick förlorat (förbindelsen bröts, tidsgränsen nåddes):
          samma kommando en gång till skickar samma meddelande (tjänsten försöker igen själv)
      77  servern avvisade installationens certifikat (återkallat, utgånget, ännu inte giltigt,
          en annan utfärdare, fel roll): be administratören om ett giltigt

    Börja med `silta init --role centre|assistance|auditor`, eller prova allt med `silta demo`.
help-arg-config = Klientens konfigurationsfil.
help-arg-lang = Språket för det som visas: fi, sv eller en (standard: enligt LC_ALL, LC_MESSAGES eller LANG; engelska om de inte anger något av dessa).
help-arg-help = Visa hjälp
help-arg-version = Visa version
help-arg-inbox-purpose = Varför du läser (antecknas i åtkomstloggen): endast för detta kommandos ärende eller ärenden, kommer ihåg för ärendet i 8 timmar; frågas per ärende om det inte anges. Listning och hämtning använder ett allmänt syfte. $SILTA_PURPOSE gäller endast detta kommando
help-arg-inbox-sync-wait = Sluta efter så här många sekunder utan något nytt
help-arg-inbox-list-new = Endast meddelanden som inte kvitterats
help-arg-inbox-list-offline = Hämta inte först
help-arg-inbox-list-wait = Sekunder att vänta på nytt vid hämtning
help-arg-inbox-list-json = JSON-utdata
help-arg-inbox-show-id = Meddelandet
help-arg-inbox-show-json = JSON-utdata
help-arg-inbox-show-format = En sida att läsa eller skriva ut: text eller html (en fristående fil med utskriftsformat). Standard: terminalvyn
help-arg-inbox-thread-case = Ärendereferensen
help-arg-inbox-thread-json = JSON-utdata
help-arg-inbox-ack-ids = Meddelandenas id (eller entydiga början)
help-arg-inbox-access-report-case = Ärendereferensen
help-arg-inbox-access-report-json = JSON-utdata
help-arg-referral-interpreter_language = Begär tolk till remissamtalet: språkets ISO 639-kod (`silta languages` listar dem), t.ex. prs för dari
help-arg-referral-interpreter_dialect = Tolkens dialekt, om den har betydelse
help-arg-referral-interpreter_note = En anmärkning om tolken (t.ex. "kvinnlig tolk", "inte från samma grupp")
help-heading-usage = Användning:
help-heading-commands = Kommandon
help-heading-options = Flaggor
help-heading-arguments = Argument
help-cmd-init = Ta installationen i bruk: skriv konfigurationen, skapa och publicera enhetsnycklar och kontrollera förbindelsen hela vägen
help-cmd-daemon = Kör förläggningens tjänst: skicka formulär som lagts i outbox/, ta emot till inbox/ (se avsnittet [daemon] i konfigurationen). Stannar kontrollerat vid SIGTERM eller Ctrl-C
help-cmd-inbox = Inkorgen: hämta, lista, läs och kvittera meddelanden; åtkomstrapporten
help-cmd-inbox-sync = Hämta, öppna och verifiera det som väntar (okvitterat tills `inbox ack`)
help-cmd-inbox-list = Mottagna meddelanden: ärende, typ, avsändare, brådskande, mottaget, status; de mest brådskande först
help-cmd-inbox-show = Visa ett meddelande (id eller en entydig början på minst 8 tecken)
help-cmd-inbox-thread = Ett ärendes meddelanden i ordning, i båda riktningarna
help-cmd-inbox-ack = Kvittera meddelanden: avsändaren ser att hjälpsystemet tagit emot dem
help-cmd-inbox-access-report = Vem som öppnade ett ärendes meddelanden, när och varför (ur installationens åtkomstlogg)
help-cmd-case = Ärendereferenser (utfärdas av hjälpsystemet)
help-cmd-case-new = Utfärda en ny ärendereferens (slumpmässig, aldrig härledd ur ett namn eller nummer)
help-cmd-case-list = Ärendereferenserna som utfärdats här eller fåtts i ett meddelande, och vem som handlägger vart och ett
help-cmd-case-close = Stäng ett ärende här: dess meddelanden raderas från installationen efter `[retention] closed_case_days` dagar. Loggas
help-cmd-case-reopen = Öppna ett ärende som stängts av misstag; redan raderade meddelanden förblir raderade. Loggas
help-cmd-request-info = Begär uppgifter om ett ärende av en förläggning (hjälpsystemet)
help-cmd-decision = Meddela den remitterande förläggningen beslutet: ja eller nej, och datum
help-cmd-meeting = Möten: föreslå, bekräfta, ställ in, svara
help-cmd-meeting-propose = Föreslå mötestider
help-cmd-meeting-confirm = Bekräfta en tid
help-cmd-meeting-cancel = Ställ in ett möte
help-cmd-meeting-reply = Svara på ett förslag: godkänn en tid, avböj eller lägg fram ett motförslag
help-cmd-assessment = De delade delarna av den gemensamma bedömningen (hjälpsystemet)
help-cmd-agreement = Serviceavtalet: vem gör vad
help-cmd-consultation = En anonym konsultation (förläggningen): inga identifierande uppgifter
help-cmd-referral = En skriftlig remiss med personens samtycke (förläggningen; formuläret med --form)
help-cmd-info-response = Svara på en begäran om uppgifter (förläggningen)
help-cmd-demo = Spela upp ett helt ärende på en tillfällig server, verifiera leveransloggen och skriv ut förloppet och granskningsspåret
help-cmd-purge = Radera de kopior som enligt reglerna för lagring ska bort, och lista dem (aldrig innehåll)
help-cmd-resend = Skicka ett meddelande härifrån på nytt till de mottagare som inte kunde öppna det
help-cmd-languages = Språkkoderna (ISO 639) som språkfälten tar, med sina namn
help-cmd-keys = Enhetsnycklar
help-cmd-keys-init = Skapa enhetens nycklar (age-identitet och Ed25519-nyckel, läge 0600; skrivs aldrig över)
help-cmd-keys-show = Skriv ut enhetens publika nycklar och fingeravtrycket att jämföra per telefon
help-cmd-keys-rotate = Gör nya nycklar för enheten och publicera dem under samma enhets-id; de gamla behålls så att meddelanden krypterade för dem går att öppna. Stoppa tjänsten först
help-cmd-keys-publish = Publicera enhetens nyckelknippe i serverns katalog
help-cmd-keys-get = Skriv ut de verifierade nycklarna för en aktör (<roll>/<id>)
help-cmd-admin = Serverns administration (roll admin): aktörer, giltighet, avstängning, enheter som tas ur bruk
help-cmd-admin-principals = Lista aktörerna som servern känner: först och senast sedd, certifikat, enheter, väntande meddelanden och kvot
help-cmd-admin-expiring = Lista certifikat och spärrlistor som snart går ut
help-cmd-admin-disable = Stäng av en aktör: dess förfrågningar avvisas och dess väntande meddelanden rapporteras till avsändarna som omöjliga att leverera
help-cmd-admin-enable = Ta en avstängd aktör i bruk igen
help-cmd-admin-retire-devices = Ta en aktörs enheter ur bruk (byte av driftsansvarig, förlorad dator): deras nycklar tas bort ur katalogen
help-cmd-send = Kryptera ett formulär och skicka det
help-cmd-audit = Leveransloggen: verifiering, bevis, frågor
help-cmd-audit-verify = Verifiera hela leveransloggen mot serverns signerade kontrollpunkt; anger det första felaktiga stället
help-cmd-audit-prove = Skriv bevis om ett meddelande som kan kontrolleras utan förbindelse: dess händelser, inklusionsbevis och en kontrollpunkt
help-cmd-audit-check-evidence = Kontrollera en bevisfil utan förbindelse till servern
help-cmd-audit-report = Sammandrag per månad: godtagna, levererade, kvitterade, avvisade och förfallna meddelanden och tiden från godkännande till kvittering, per typ och brådskande
help-cmd-audit-query = Fråga leveransloggen
help-cmd-receive = Ta emot, öppna, verifiera och kvittera det som väntar; skriv ut varje meddelande eller spara det
help-cmd-inbox-due = Vad som förfaller: tidsfristerna i meddelandena och brådskande meddelanden som väntat för länge
help-cmd-case-claim = Ta ett ärende: alla arbetsstationer ser att du handlägger det
help-cmd-case-handover = Överlämna ett ärende du handlägger till en kollega (kollegans användarnamn)
help-cmd-case-release = Släpp ett ärende du handlägger: därefter handläggs det inte av någon
help-cmd-case-show = Vem som handlägger ett ärende, och varje övertagande, överlämning och frisläppande av det (så som de hämtats hit)
help-cmd-consultation-reply = Svara på en anonym konsultation (hjälpsystemet): råd, remiss eller inte, brådskande eller inte; ingen ärendereferens
help-cmd-consent-record = Ett separat samtycke (förläggningen): nytt samtycke eller ändrad omfattning
help-cmd-emergency-confirmation = Bekräfta tjänster som inletts efter en remiss per telefon (hjälpsystemet); utfärdar ärendereferensen
help-cmd-status-update = En förändring i ärendet (båda riktningarna): flytt, stängning, säkerhet, försvunnen, ...
help-cmd-case-transfer = Överför klientskapet till en annan förläggning (hjälpsystemet)
help-cmd-consent-withdrawal = Personen återkallade sitt samtycke eller begränsade det (båda riktningarna)
help-cmd-exit-notice = Klientskapet upphör (hjälpsystemet): endast orsak och datum
help-cmd-agreement-answer = Svara på en version av serviceavtalet (förläggningen): godkänn eller lägg fram ett motförslag
help-arg-inbox-due-offline = Hämta inte först
help-arg-inbox-due-wait = Sekunder att vänta på nytt vid hämtning
help-arg-inbox-due-json = JSON-utdata
help-arg-inbox-access-report-data_subject = Det den registrerade har rätt till (dataskyddsförordningen art. 15; lag 906/2019 17 §): datum, syfte och arbetsstation för varje åtkomst till ärendets uppgifter, sammanförda från alla arbetsstationer som delat sin åtkomstlogg
help-arg-inbox-access-report-with_staff = Med --data-subject: namnge även personalen (för den personuppgiftsansvariges interna bruk; antecknas i åtkomstloggen)
help-arg-case-claim-case = Ärendereferensen (32 hexadecimala siffror)
help-arg-case-claim-note = En kort anteckning (inga klientuppgifter), t.ex. "ringer förläggningen i dag"
help-arg-case-claim-force = Ta det fast en kollega handlägger det (anges i anteckningen och i åtkomstloggen)
help-arg-case-handover-case = Ärendereferensen (32 hexadecimala siffror)
help-arg-case-handover-to = Kollegans användarnamn (så som åtkomstloggen anger det)
help-arg-case-handover-note = En kort anteckning (inga klientuppgifter), t.ex. "ledig från måndag"
help-arg-case-handover-force = Överlämna fast du inte själv handlägger ärendet (anges i anteckningen och i åtkomstloggen)
help-arg-case-release-case = Ärendereferensen (32 hexadecimala siffror)
help-arg-case-release-note = En kort anteckning (inga klientuppgifter)
help-arg-case-release-force = Släpp det fast du inte själv handlägger ärendet (anges i anteckningen och i åtkomstloggen)
help-arg-case-show-case = Ärendereferensen (32 hexadecimala siffror)
help-arg-case-show-json = JSON-utdata
help-arg-agreement-answer-accept = Godkänn den version som besvaras
help-arg-agreement-answer-counter_draft = Föreslå ändringar: utkastet består av --service, --procedures och --review-date
help-arg-agreement-answer-note = En anteckning

## Fel och tips.

hint-no-configuration = ta installationen i bruk med `silta init --role centre|assistance|auditor ...`, eller ange --config FIL (eller SILTA_CONFIG); för att prova Silta, kör `silta demo`
hint-fix-form = ingenting skickades; rätta formuläret och försök igen
hint-fix-form-or-flags = ingenting skickades; rätta formuläret eller flaggorna och försök igen
err-cert-rejected = servern avvisade installationens certifikat: { $why }
hint-cert-rejected = be administratören om ett giltigt certifikat (silta-certs issue) och låt `cert`/`key` i konfigurationen peka på det
err-relay-cert = serverns certifikat är inte betrott: { $why }
hint-relay-cert = kontrollera `ca` och `relay` (eller `server_name`) i konfigurationen
err-cert-no-longer = servern godtar inte längre detta certifikat: { $why }
hint-cert-no-longer = det har troligen återkallats; fråga administratören
cert-revoked = det har ÅTERKALLATS
cert-expired = det har GÅTT UT eller är INTE ÄNNU GILTIGT (kontrollera också datorns klocka)
cert-other-ca = det har inte utfärdats av serverns utfärdare
cert-wrong-role = det är inte ett rollcertifikat för Silta (fel roll, identitet eller nyckelanvändning)
cert-none-sent = inget certifikat skickades
cert-tls-alert = TLS-larm { $alert }
err-unreachable = servern kan inte nås: { $why }
hint-unreachable = är servern igång och är `relay` i konfigurationen rätt? (`silta daemon` försöker igen själv)
err-unavailable = servern är inte tillgänglig: { $why }
hint-try-again-shortly = försök igen om en stund
err-no-answer = inget svar från servern: { $why }
hint-no-device-keys = skapa och publicera nycklar med `silta init` (eller `silta keys init` och sedan `silta keys publish`)
err-no-recipient-keys = { $principal } har inte publicerat nycklar, så ingenting kan krypteras för den
hint-no-recipient-keys = { $principal } måste först köra `silta init` (eller `silta keys publish`)
err-not-found = servern känner inte till det: { $why }
hint-not-found = kontrollera mottagaren (<roll>/<id>) eller meddelandets id
err-permission-denied = servern vägrade: { $why }
hint-permission-denied = din roll får kanske inte göra detta; se avsnittet "who may send what" i README
form-unknown-language = { $field }: { $code } är inte en ISO 639-språkkod som Silta känner till
form-unknown-language-hint = skriv språkets ISO 639-kod (639-1 om en sådan finns, t.ex. ar, fa, so; annars 639-3, t.ex. prs för dari, ckb för sorani); `silta languages` listar dem
case-none-refused = ärende: ange en ärendereferens (32 hexadecimala siffror); meddelanden utan ärende ("none") hör inte till något ärende: `silta inbox list` visar dem, `silta inbox show ID` öppnar ett
cmd-written-referral-deadline-required = --written-referral-deadline ÅÅÅÅ-MM-DD är obligatorisk
cmd-deadline-past = { $flag } { $date } har redan passerat (i dag är det { $today })
cmd-receiving-centre-required = --receiving-centre centre/<id> är obligatorisk
cmd-date-format = { $flag } { $value }: skriv ett datum i formen ÅÅÅÅ-MM-DD
cmd-date-future = { $flag } { $date } är efter i dag ({ $today }): ange den dag det hände
cmd-consultation-reply-case = ett svar på en konsultation har ingen ärendereferens: konsultationen kopplas inte till ärendet (en eventuell senare remiss inleder ärendet)
cmd-received-how = --received-how { $value }: oral (muntligt) eller written (skriftligt)
cmd-answer-reply-to-required = --reply-to <den version av serviceavtalet som besvaras> är obligatorisk
cmd-answer-reply-to-version = --reply-to <den version som besvaras> är obligatorisk
cmd-answer-accept-with-draft = --service, --procedures och --review-date utgör ett motförslag: ange --counter-draft, inte --accept
cmd-answer-how = ange hur du svarar: --accept, eller --counter-draft med ändringarna (--service, --procedures, --review-date)
cmd-supersedes-not-version = --supersedes { $id }: inte en version av serviceavtalet i detta ärende
cmd-reply-to-not-agreement = --reply-to { $id }: ett meddelande av typen { $kind } är inte en version av serviceavtalet; svara på avtalet
cmd-case-issued = ny ärendereferens { $case } utfärdad för denna brådskande remiss

## Inkorgen.

inbox-purpose-prompt = Syftet med denna session (listning, hämtning) (antecknas i åtkomstloggen):
inbox-purpose-missing = åtkomstloggen behöver syftet med denna session (listning, hämtning)
inbox-purpose-hint = lägg till --purpose "..." (kommer ihåg i 8 timmar) eller sätt SILTA_PURPOSE
inbox-purpose-prompt-case = Syftet med din åtkomst till ärende { $case } (antecknas i åtkomstloggen):
inbox-purpose-missing-case = åtkomstloggen behöver syftet med din åtkomst till ärende { $case }
inbox-purpose-hint-case = lägg till --purpose "..." (endast för detta ärende; kommer ihåg för det i 8 timmar) eller sätt SILTA_PURPOSE
inbox-purpose-prompt-message = Syftet med din åtkomst till meddelande { $message } (det har inget ärende; antecknas i åtkomstloggen):
inbox-purpose-missing-message = åtkomstloggen behöver syftet med din åtkomst till meddelande { $message } (det har inget ärende)
inbox-purpose-hint-message = lägg till --purpose "..." (bara för detta meddelande; kom ihåg i 8 timmar) eller sätt SILTA_PURPOSE
inbox-no-messages = inga meddelanden
inbox-no-case-messages = inga meddelanden i ärende { $case } här
inbox-thread-header = ärende { $case } — { $count ->
        [one] 1 meddelande
       *[other] { $count } meddelanden
    }
inbox-new-messages = { $count ->
        [one] 1 nytt meddelande
       *[other] { $count } nya meddelanden
    }
inbox-rejected = ett meddelande avvisades { $detail }
inbox-deferred = ett meddelande kunde inte behandlas nu (lämnat till nästa hämtning; de andra fördröjdes inte) { $detail }
inbox-acked = kvitterat: { $kind } { $id } från { $from } (avsändaren ser det)
inbox-ack-expired = INTE kvitterat: { $kind } { $id } från { $from } förföll hos servern innan det kvitterades. Avsändaren fick veta att det FÖRFÖLL och kan skicka det på nytt: ring eller svara { $from } så att de vet att det kom fram. (Markerat som förfallet; reglerna för lagring raderar det.)
inbox-ack-expired-summary = { $count ->
        [one] 1 meddelande förföll hos servern och kan inte kvitteras: { $ids }
       *[other] { $count } meddelanden förföll hos servern och kan inte kvitteras: { $ids }
    }
inbox-id-too-short = { $id }: ange minst 8 tecken av meddelandets id
inbox-no-such-message = inget meddelande { $id } här (kör `silta inbox list`)
inbox-id-ambiguous = { $id } matchar { $count } meddelanden; ange mer av id:t
case-not-hex = { $case }: väntade 32 hexadecimala siffror eller "none"
case-wrong-length = { $case }: väntade 32 hexadecimala siffror (16 byte)
case-new-not-assistance = ärendereferenser utfärdas av hjälpsystemet; { $principal } använder den som den fått
case-new-issued = ny ärendereferens utfärdad; använd den med --case (den säger ingenting om personen)
col-issued = utfärdad (UTC)
col-by = av
col-held-by = handläggs av
col-label = etikett
col-id = id
col-case = ärende
col-kind = typ
col-from = från
col-urgency = brådskande
col-received = mottaget (UTC)
col-state = status
col-code = kod
col-language = språk
case-none = (inget)
record-state-new = nytt
record-state-acknowledged = kvitterat
record-state-sent = skickat
record-state-expired-at-relay = förföll hos servern
value-yes = ja
value-no = nej

## Ett meddelande (`inbox show`, `inbox thread`).

show-received = mottaget
show-sent = skickat
show-from = från
show-to = till
show-case = ärende
show-case-none = (inget ännu)
show-urgency = brådskande
show-legal-basis = rättslig grund
show-in-reply-to = svar på
show-written = skrivet
show-written-accepted = { $written }    godtaget av servern: { $accepted } (loggens index { $index })
show-state = status
show-acked-by = av { $who } { $time }
show-handled = hanterat
show-signed-by = signerat av
show-signed-by-device = { $from } enhet { $device } (nyckel { $key })
show-resends = skickar på nytt
show-resent-as = skickat på nytt som { $id } { $time }
show-interpreter-needed = TOLK BEHÖVS: { $language }
show-interpreter-dialect = dialekt: { $value }
show-interpreter-note = anmärkning: { $value }

## Sidan för utskrift (`inbox show --format text|html`).

page-title = { $kind } — Silta
page-kind = Typ
page-message-id = Meddelandets id
page-case = Ärende
page-from = Från
page-to = Till
page-written = Skrivet
page-urgency = Brådskande
page-legal-basis = Rättslig grund
page-in-reply-to = Svar på
page-state = Status
page-from-device = Avsändarens enhet
page-accepted = Godtaget av servern
page-accepted-at = { $time } (loggens index { $index })
page-received = Mottaget
page-acknowledged = Kvitterat
page-content = Innehåll
page-handled = Hanterat vid en annan arbetsstation
page-handled-by = hanterat av { $device } { $time }
page-rejected-by = avvisat av { $device } { $time } ({ $reason })
page-handled-verified = signaturen verifierad
page-handled-unverified = uppgiften om hantering KUNDE INTE VERIFIERAS: { $problem }
page-sealed-before = Krypterat innan denna arbetsstations nycklar publicerades: innehållet kan inte öppnas här; öppna det vid en annan arbetsstation.
page-footer = Utskrivet av { $who } { $time } (UTC). Konfidentiellt: innehåller personuppgifter om ett möjligt offer för människohandel. Förvara inlåst och förstör när det inte längre behövs.

## Åtkomstrapporten (`inbox access-report`).

access-report-header = Åtkomst till ärende { $case }, antecknad av { $principal } ({ $path })
access-report-footer = { $count ->
        [one] 1 post; loggens hashkedja är hel.
       *[other] { $count } poster; loggens hashkedja är hel.
    }
access-note-case-only = obs: endast poster som antecknats under ärendet visas ({ $error })
access-note-torn = obs: loggens rader { $lines } är avbrutna skrivningar (krasch eller strömavbrott); de innehåller ingen post
access-log-damaged = ÅTKOMSTLOGGEN ÄR SKADAD: { $error }
access-log-damaged-hint = behåll filen som den är och rapportera detta
access-n-messages = { $count } meddelanden
access-purpose-to = { $purpose } (till { $recipients })
col-when = när (UTC)
col-who = vem
col-what = vad
col-messages = meddelanden
col-purpose = syfte

## Handläggare av ärenden (`case claim|handover|release|show`, kolumnen handläggs av),
## `inbox due`, den registrerades åtkomstrapport (`inbox access-report ÄRENDE --data-subject`).

claim-holder-at-desk = { $person } (arbetsstation { $desk })
claim-nobody = ingen
claim-held-since = { $person } sedan { $since }
claim-to-invalid = --to: kollegans användarnamn, så som åtkomstloggen anger det (inga mellanslag)
claim-case-missing = ärende: ange en ärendereferens (32 hexadecimala siffror)
claim-refused = ärende { $case } handläggs av { $holder } (enligt det som hämtats hit), inte av dig ({ $user })
claim-refused-hint = hämta de senaste övertagandena med `silta inbox sync`; lägg till --force för att ändå göra det (anteckningen och åtkomstloggen anger att det gjordes trots allt)
claim-done-claim = du ({ $person }) handlägger ärende { $case } vid arbetsstation { $desk }
claim-done-handover = ärende { $case } överlämnat till { $to }
claim-done-release = ärende { $case } frisläppt: ingen handlägger det
claim-sent = { $done } (övertagande { $id } godkänt vid loggindex { $index }; de andra arbetsstationerna ser det vid sin nästa hämtning)
claim-show-case = ärende { $case }
claim-show-held-by = handläggs av: { $person } sedan { $since }
claim-show-held-by-desk = handläggs av: { $person } vid arbetsstation { $desk } sedan { $since }
claim-show-held-by-nobody = handläggs av: ingen
claim-show-none = (inga övertaganden hämtade hit; `silta inbox sync` hämtar de andra arbetsstationernas övertaganden)
claim-line-claim = övertaget av { $holder }
claim-line-handover = överlämnat av { $holder } till { $to }
claim-line-release = frisläppt av { $holder }
claim-line-none = ett övertagande utan åtgärd av { $holder }
claim-line = { $what } vid arbetsstation { $desk } ({ $at })
claim-line-note = { $what } vid arbetsstation { $desk } ({ $at }): { $note }
sync-shared = delade { $entries } poster ur åtkomstloggen med de andra arbetsstationerna ({ $messages } meddelanden)
sync-share-failed = kunde inte dela arbetsstationens åtkomstlogg (försöker igen vid nästa hämtning): { $why }
due-nothing = inget förfaller
due-overdue = FÖRSENAT
col-due = förfaller
col-from-message = från meddelande
due-what-information-response = svar på begäran om uppgifter
due-what-written-referral = skriftlig remiss
due-what-agreement-review = översyn av serviceavtalet
due-what-meeting = möte
due-what-acknowledgement = kvittering
ds-share-failed = obs: arbetsstationens senaste poster kunde inte delas nu: { $why }
ds-header =
    Åtkomst till uppgifterna i ärende { $case } hos { $controller }: när, varför och vid vilken arbetsstation
    (det den registrerade har rätt till: dataskyddsförordningen art. 15, lag 906/2019 17 §)
col-desk = arbetsstation
col-message = meddelande
col-staff = personal
ds-staff = { $user } (uid { $uid })
ds-staff-declared = { $user } (uid { $uid }; uppger: { $declared })
ds-covers-own = { $desk } (till { $until }, arbetsstationens egen logg)
ds-covers = { $desk } (till { $until })
ds-footer = { $count ->
        [one] 1 post. Omfattar arbetsstationerna: { $desks }.
       *[other] { $count } poster. Omfattar arbetsstationerna: { $desks }.
    }
ds-not-covered = Arbetsstationer som aldrig delat sin åtkomstlogg för detta ärende ingår inte; `silta inbox sync` hämtar de andra arbetsstationernas senaste delningar.
ds-staff-not-named = Personalen namnges inte (--with-staff namnger dem, för den personuppgiftsansvariges interna bruk).
access-action-received = mottaget
access-action-listed = listat
access-action-shown = öppnat
access-action-thread = läst i ärendets tråd
access-action-disclosed = lämnat ut
access-action-reported = rapporterat
access-action-closed = stängt
access-action-reopened = öppnat på nytt
access-action-shared = delat
access-action-purged = raderat
access-action-key-deleted = nyckel raderad

## Granskarens rapporter (`audit report`, `audit query`).

report-col-month = månad
report-col-group = grupp
report-col-accepted = godtagna
report-col-delivered = levererade
report-col-acknowledged = kvitterade
report-col-rejected = avvisade
report-col-expired = förfallna
report-col-median = median
report-col-p90 = p90
report-col-max = max
report-group-all = alla
report-group-kind = typ
report-group-urgency = brådskande
report-footnote = median, p90, max: tiden från godkännande till kvittering per meddelande och mottagare, percentiler enligt närmaste rang.
report-unusable = { $count ->
        [one] 1 meddelandehändelse saknade tid, meddelandets id eller mottagare, eller upprepade ett godkännande, och räknas inte.
       *[other] { $count } meddelandehändelser saknade tid, meddelandets id eller mottagare, eller upprepade ett godkännande, och räknas inte.
    }
audit-col-index = index
audit-col-time = tid (UTC)
audit-col-event = händelse
audit-col-actor = aktör
audit-col-kind = typ
audit-col-message = meddelande
audit-col-to = till
audit-col-detail = detalj
audit-events-count = { $count ->
        [one] (1 händelse)
       *[other] ({ $count } händelser)
    }

## Konfigurationen som `silta init` skriver (varje rad blir en kommentar).

config-head =
    silta-konfiguration för { $principal } (roll { $role }), skriven av `silta init`.
    Använd den med `silta --config { $config } ...` eller SILTA_CONFIG={ $config }.
config-relay = Servern, värd:port.
config-ca = Utfärdaren som utfärdade serverns och allas certifikat.
config-cert = Installationens certifikat och nyckel (från `silta-certs issue`).
config-state-dir = Enhetsnycklar (keys/, läge 0600), lokalt tillstånd, åtkomstloggen (access.log).
config-log-key = Leveransloggens verifieringsnyckel: varje kvitto kontrolleras mot den.
config-log-key-none =
    Leveransloggens verifieringsnyckel (`silta-relay log-key`, överlämnas separat); med den
    kontrolleras varje kvitto.
config-daemon-folder =
    outbox/ (formulär att skicka), sent/ (med leveransstatus), failed/ (med orsaken),
    inbox/ (mottagna meddelanden).
config-daemon-scan = Hur ofta outbox/ granskas och hur nya försök glesas ut medan servern inte svarar.
config-daemon-purpose = Antecknas i åtkomstloggen när tjänsten öppnar mottagna meddelanden.
config-retention-closed =
    Installationens kopior är överföringskopior (ärendehanteringssystemet bevarar det som lagen
    kräver). Dagar efter `silta case close ÄRENDE` innan ärendets meddelanden raderas här.
config-retention-uncased = Dagar efter vilka ett meddelande utan ärende raderas här.

## Uppräkningsvärden: varje värdes benämning under dess protobuf-namn.

MESSAGE_KIND_UNSPECIFIED = Ospecificerat
MESSAGE_KIND_ANONYMOUS_CONSULTATION = Anonym konsultation
MESSAGE_KIND_CONSULTATION_REPLY = Svar på konsultation
MESSAGE_KIND_CONSENT_RECORD = Samtycke
MESSAGE_KIND_REFERRAL = Remiss
MESSAGE_KIND_EMERGENCY_REFERRAL_CONFIRMATION = Bekräftelse av brådskande remiss
MESSAGE_KIND_INFORMATION_REQUEST = Begäran om uppgifter
MESSAGE_KIND_INFORMATION_RESPONSE = Svar på begäran om uppgifter
MESSAGE_KIND_ADMISSION_DECISION_NOTICE = Meddelande om intagning i hjälpsystemet
MESSAGE_KIND_MEETING_PROPOSAL = Förslag till möte
MESSAGE_KIND_MEETING_CONFIRMATION = Bekräftelse av möte
MESSAGE_KIND_MEETING_CANCELLATION = Inställt möte
MESSAGE_KIND_MEETING_REPLY = Svar på mötesförslag
MESSAGE_KIND_JOINT_ASSESSMENT_RECORD = Protokoll över gemensam bedömning
MESSAGE_KIND_SERVICE_AGREEMENT = Serviceavtal
MESSAGE_KIND_STATUS_UPDATE = Lägesrapport
MESSAGE_KIND_CASE_TRANSFER = Överföring av klientskap
MESSAGE_KIND_CONSENT_WITHDRAWAL = Återkallat samtycke
MESSAGE_KIND_EXIT_NOTICE = Meddelande om avslut
MESSAGE_KIND_SERVICE_AGREEMENT_ANSWER = Svar på serviceavtal
MESSAGE_KIND_CASE_CLAIM = Ansvar för ärendet
MESSAGE_KIND_ACCESS_LOG_SHARE = Delad åtkomstlogg

URGENCY_UNSPECIFIED = Ospecificerat
URGENCY_NORMAL = Normal
URGENCY_URGENT = Brådskande
URGENCY_EMERGENCY = Nödläge

LEGAL_BASIS_UNSPECIFIED = Ospecificerat
LEGAL_BASIS_CONSENT = Samtycke
LEGAL_BASIS_STATUTORY_INFORMATION_RIGHT = Lagstadgad rätt att få uppgifter
LEGAL_BASIS_CHILD_WELFARE_DUTY = Skyldighet enligt barnskyddslagen
LEGAL_BASIS_ACUTE_DANGER = Akut fara
LEGAL_BASIS_NO_PERSONAL_DATA = Inga personuppgifter
LEGAL_BASIS_INTERNAL = Internt inom organisationen

DELIVERY_STATE_UNSPECIFIED = Ospecificerat
DELIVERY_STATE_PENDING = Väntar
DELIVERY_STATE_DELIVERED = Levererat
DELIVERY_STATE_ACKNOWLEDGED = Kvitterat
DELIVERY_STATE_REJECTED = Avvisat
DELIVERY_STATE_EXPIRED = Förfallet
DELIVERY_STATE_UNDELIVERABLE = Kan inte levereras
DELIVERY_STATE_SENT = Skickat
DELIVERY_STATE_ACKNOWLEDGEMENT_NOT_VERIFIED = Kvitteringen INTE verifierad

UNDELIVERABLE_REASON_UNSPECIFIED = Ospecificerat
UNDELIVERABLE_REASON_RECIPIENT_DISABLED = Mottagaren avstängd
UNDELIVERABLE_REASON_DEVICES_RETIRED = Mottagarens enheter har tagits ur bruk
UNDELIVERABLE_REASON_CASE_MOVED = Ärendet flyttat till en annan förläggning

REJECTION_REASON_UNSPECIFIED = Ospecificerat
REJECTION_REASON_CANNOT_DECRYPT = Kan inte dekrypteras
REJECTION_REASON_BAD_SIGNATURE = Felaktig signatur
REJECTION_REASON_ENVELOPE_MISMATCH = Kuvertet stämmer inte med det signerade innehållet
REJECTION_REASON_REPLAY = Upprepat meddelande
REJECTION_REASON_MISROUTED = Felaktigt dirigerat
REJECTION_REASON_MALFORMED_PAYLOAD = Felaktigt innehåll
REJECTION_REASON_UNTRUSTED_SENDER_KEY = Avsändarens nyckel är inte betrodd
REJECTION_REASON_OTHER = Annat

PURPOSE_CODE_UNSPECIFIED = Ospecificerat
PURPOSE_CODE_SUPERVISION = Tillsyn
PURPOSE_CODE_DATA_SUBJECT_REQUEST = Begäran från den registrerade
PURPOSE_CODE_INCIDENT = Incident
PURPOSE_CODE_DELIVERY_CHECK = Kontroll av leverans
PURPOSE_CODE_LOG_VERIFICATION = Verifiering av loggen
PURPOSE_CODE_REPORTING = Rapportering
PURPOSE_CODE_LEGAL_REQUEST = Begäran från myndighet

AGE_GROUP_UNSPECIFIED = Inte angivet
AGE_GROUP_ADULT = Vuxen
AGE_GROUP_CHILD_UNDER_15 = Barn under 15 år
AGE_GROUP_CHILD_15_TO_17 = Barn 15–17 år

EXPLOITATION_TYPE_UNSPECIFIED = Inte angivet
EXPLOITATION_TYPE_SEXUAL = Sexuell exploatering
EXPLOITATION_TYPE_FORCED_LABOUR = Tvångsarbete
EXPLOITATION_TYPE_FORCED_MARRIAGE = Tvångsäktenskap
EXPLOITATION_TYPE_FORCED_CRIMINALITY = Tvång att begå brott
EXPLOITATION_TYPE_ORGAN_REMOVAL = Organavlägsnande
EXPLOITATION_TYPE_OTHER = Annat

EXPLOITATION_PLACE_UNSPECIFIED = Inte angivet
EXPLOITATION_PLACE_FINLAND = I Finland
EXPLOITATION_PLACE_ABROAD = Utomlands
EXPLOITATION_PLACE_IN_TRANSIT = Under resan

CENTRE_TYPE_UNSPECIFIED = Inte angivet
CENTRE_TYPE_ADULT = Förläggning för vuxna
CENTRE_TYPE_MINOR_UNIT = Enhet för minderåriga

ADMISSION_OUTCOME_UNSPECIFIED = Inte angivet
ADMISSION_OUTCOME_ADMITTED = Intagen i hjälpsystemet
ADMISSION_OUTCOME_NOT_ADMITTED = Inte intagen i hjälpsystemet

MEETING_ANSWER_UNSPECIFIED = Inte angivet
MEETING_ANSWER_ACCEPT = Godkänt
MEETING_ANSWER_DECLINE = Avböjt
MEETING_ANSWER_COUNTER_PROPOSAL = Motförslag

THREAT_LEVEL_UNSPECIFIED = Inte angivet
THREAT_LEVEL_NONE = Inget hot
THREAT_LEVEL_LOW = Lågt
THREAT_LEVEL_MODERATE = Måttligt
THREAT_LEVEL_HIGH = Högt

CRIMINAL_CASE_STATUS_UNSPECIFIED = Inte angivet
CRIMINAL_CASE_STATUS_NONE = Inget brottmål
CRIMINAL_CASE_STATUS_REPORT_FILED = Brottsanmälan gjord
CRIMINAL_CASE_STATUS_PRE_TRIAL_INVESTIGATION = Förundersökning pågår
CRIMINAL_CASE_STATUS_COURT = I domstol

SUPPORT_PERSON_NEED_UNSPECIFIED = Inte angivet
SUPPORT_PERSON_NEED_YES = Behövs
SUPPORT_PERSON_NEED_NO = Behövs inte
SUPPORT_PERSON_NEED_ARRANGED = Ordnat

RESPONSIBLE_PARTY_UNSPECIFIED = Inte angivet
RESPONSIBLE_PARTY_ASSISTANCE_SYSTEM = Hjälpsystemet
RESPONSIBLE_PARTY_CENTRE = Förläggningen
RESPONSIBLE_PARTY_MUNICIPALITY = Kommunen
RESPONSIBLE_PARTY_OTHER = Annan

AGREEMENT_STATUS_UNSPECIFIED = Inte angivet
AGREEMENT_STATUS_DRAFT = Utkast
AGREEMENT_STATUS_AGREED = Överenskommet
AGREEMENT_STATUS_SUPERSEDED = Ersatt

AGREEMENT_ANSWER_UNSPECIFIED = Inte angivet
AGREEMENT_ANSWER_ACCEPT = Godkänt
AGREEMENT_ANSWER_COUNTER_DRAFT = Motutkast

CHANGE_KIND_UNSPECIFIED = Inte angivet
CHANGE_KIND_CLIENT_MOVING = Klienten flyttar
CHANGE_KIND_CENTRE_CLOSING = Förläggningen stängs
CHANGE_KIND_OPERATOR_CHANGE = Byte av driftsansvarig
CHANGE_KIND_SECURITY_SITUATION = Säkerhetsläge
CHANGE_KIND_ASYLUM_STATUS = Asylärendets läge
CHANGE_KIND_HOSPITALISATION = Sjukhusvård
CHANGE_KIND_CLIENT_MISSING = Klienten försvunnen
CHANGE_KIND_REPRESENTATIVE_CHANGE = Byte av företrädare
CHANGE_KIND_OTHER = Annat

EXIT_REASON_UNSPECIFIED = Inte angivet
EXIT_REASON_LEFT_VOLUNTARILY = Lämnade frivilligt
EXIT_REASON_REMOVED_BY_DECISION = Avförd genom beslut

CLAIM_ACTION_UNSPECIFIED = Inte angivet
CLAIM_ACTION_CLAIM = Övertaget
CLAIM_ACTION_HANDOVER = Överlämnat
CLAIM_ACTION_RELEASE = Frisläppt

## Fält i innehållet: field-<namn i schemat och formulären>.

field-accepted_slot = Godkänd tid
field-access_log_share = Delad åtkomstlogg
field-account = Redogörelse för händelserna
field-action = Åtgärd
field-actions_required = Åtgärder som krävs
field-admission_decision_notice = Meddelande om intagning i hjälpsystemet
field-advice = Råd
field-age_group = Åldersgrupp
field-agreement = Avtal
field-anonymous_consultation = Anonym konsultation
field-answer = Svar
field-answers = Svar
field-attachments = Bilagor
field-case_claim = Ansvar för ärendet
field-case_ref = Ärendereferens
field-case_transfer = Överföring av klientskap
field-centre_actions = Förläggningens åtgärder
field-centre_client_id = Förläggningens klientnummer
field-centre_type = Typ av förläggning
field-change = Förändring
field-child_consented = Barnet samtyckte
field-children = Barn
field-client_attends = Klienten deltar
field-client_consented = Klienten samtyckte
field-client_informed = Klienten informerad
field-client_view = Klientens egen syn
field-consent = Samtycke
field-consent_record = Samtycke
field-consent_withdrawal = Återkallat samtycke
field-consultation_reply = Svar på konsultation
field-contact = Kontaktperson
field-contact_details = Kontaktuppgifter
field-contact_person = Kontakta personen
field-contact_referrer = Kontakta remittenten
field-contact_role = Kontaktperson (roll)
field-counsel = Biträde
field-counter_draft = Motutkast
field-counter_slots = Föreslagna alternativa tider
field-covers_until = Omfattar tiden till
field-created_at = Skrivet
field-criminal_case = Brottmål
field-current_address = Nuvarande adress
field-date = Datum
field-date_of_birth = Födelsedatum
field-deadline = Tidsfrist
field-decision_date = Beslutsdatum
field-declared_user = Uppgiven användare
field-declined = Avböjt
field-description = Beskrivning
field-desk = Arbetsplats
field-dialect = Dialekt
field-duration_minutes = Längd (minuter)
field-effective_date = Gäller från
field-emergency_referral_confirmation = Bekräftelse av brådskande remiss
field-entries = Poster
field-exit_notice = Meddelande om avslut
field-exploitation_place = Plats för exploateringen
field-exploitation_type = Form av exploatering
field-guardian_name = Vårdnadshavarens eller företrädarens namn
field-guardian_role = Vårdnadshavarens eller företrädarens roll
field-guardian_signed = Vårdnadshavaren eller företrädaren har undertecknat
field-handed_to = Överlämnat till
field-handover = Överlämning
field-health_notes = Hälsouppgifter
field-holder = Ansvarig
field-holder_device = Den ansvariges arbetsplats
field-in_reply_to = Svar på meddelande
field-indicators = Indikatorer
field-information_request = Begäran om uppgifter
field-information_response = Svar på begäran om uppgifter
field-informed_about = Informerad om
field-interim_measures = Omedelbara åtgärder
field-interpreter = Tolk
field-interpreter_language = Tolkspråk
field-interpreter_used = Tolk användes
field-item = Uppgift
field-items = Begärda uppgifter
field-joint_assessment_record = Protokoll över gemensam bedömning
field-kind = Typ
field-language = Språk
field-legal_basis = Rättslig grund
field-legal_basis_note = Rättslig grund (anmärkning)
field-locator = Hänvisning
field-media_type = Filtyp
field-meeting_cancellation = Inställt möte
field-meeting_confirmation = Bekräftelse av möte
field-meeting_date = Mötesdatum
field-meeting_proposal = Förslag till möte
field-meeting_reply = Svar på mötesförslag
field-message_id = Meddelandets id
field-mother_tongue = Modersmål
field-name = Namn
field-nationality = Medborgarskap
field-new_location = Ny vistelseort
field-not_held = Uppgiften finns inte
field-note = Anmärkning
field-observations = Iakttagelser
field-old_centre_access_revoked = Den tidigare förläggningens åtkomst återkallad
field-os_user = Användare i operativsystemet
field-other_languages = Andra språk
field-outcome = Utfall
field-overall_situation = Helhetssituation
field-participants = Deltagare
field-person = Person
field-person_name = Namn
field-phone = Telefon
field-place = Plats
field-police_report = Polisanmälan
field-procedures = Rutiner
field-proceed_to_referral = Gå vidare med remiss
field-purpose = Syfte
field-questions = Frågor
field-reason = Orsak
field-received_how = Mottaget hur
field-receiving_centre = Mottagande förläggning
field-recovery_period_end = Återhämtningsperioden upphör
field-recovery_period_granted = Återhämtningsperiod beviljad
field-referral = Remiss
field-referrer = Remittent
field-remote_link = Länk till distansmöte
field-residence_status = Uppehållsstatus
field-responsible = Ansvarig part
field-review_date = Datum för översyn
field-risks_and_mitigations = Risker och hur de hanteras
field-role = Roll
field-safety_concerns = Säkerhetsfrågor
field-safety_measures = Säkerhetsåtgärder
field-safety_precautions = Säkerhetsarrangemang
field-scope = Omfattning
field-security_threat = Säkerhetshot
field-service = Tjänst
field-service_agreement = Serviceavtal
field-service_agreement_answer = Svar på serviceavtal
field-sha256 = SHA-256
field-shared_parts_note = Anmärkning om de delade delarna
field-signed_document = Undertecknat dokument
field-slot = Tid
field-slots = Tider
field-start = Börjar
field-start_date = Startdatum
field-status = Status
field-status_update = Lägesrapport
field-support_person = Stödperson i brottmålet
field-supersedes = Ersätter
field-time = Tid
field-uid = Användar-id (uid)
field-uma_number = UMA-nummer
field-urgent = Brådskande
field-version = Version
field-withdrawn = Återkallat
field-written_referral_deadline = Skriftlig remiss senast

## Språk (ISO 639): lang-<kod>.

lang-am = amhariska
lang-ar = arabiska
lang-az = azerbajdzjanska
lang-be = vitryska
lang-bg = bulgariska
lang-bn = bengali
lang-bs = bosniska
lang-ckb = sorani (centralkurdiska)
lang-cs = tjeckiska
lang-da = danska
lang-de = tyska
lang-el = grekiska
lang-en = engelska
lang-es = spanska
lang-et = estniska
lang-fa = persiska (farsi)
lang-fi = finska
lang-fr = franska
lang-ha = hausa
lang-he = hebreiska
lang-hi = hindi
lang-hr = kroatiska
lang-hu = ungerska
lang-hy = armeniska
lang-id = indonesiska
lang-ig = igbo
lang-it = italienska
lang-ja = japanska
lang-ka = georgiska
lang-kk = kazakiska
lang-kmr = kurmanji (nordkurdiska)
lang-ko = koreanska
lang-ku = kurdiska
lang-ky = kirgiziska
lang-lt = litauiska
lang-lv = lettiska
lang-mk = makedonska
lang-mn = mongoliska
lang-ms = malajiska
lang-my = burmesiska
lang-ne = nepalesiska
lang-nl = nederländska
lang-no = norska
lang-pa = punjabi
lang-pl = polska
lang-prs = dari
lang-ps = pashto
lang-pt = portugisiska
lang-ro = rumänska
lang-ru = ryska
lang-se = nordsamiska
lang-sk = slovakiska
lang-sl = slovenska
lang-so = somaliska
lang-sq = albanska
lang-sr = serbiska
lang-sv = svenska
lang-sw = swahili
lang-ta = tamil
lang-tg = tadzjikiska
lang-th = thailändska
lang-ti = tigrinja
lang-tk = turkmeniska
lang-tl = tagalog
lang-tr = turkiska
lang-uk = ukrainska
lang-ur = urdu
lang-uz = uzbekiska
lang-vi = vietnamesiska
lang-wo = wolof
lang-yo = yoruba
lang-zh = kinesiska
case-held-forced = [tvingad]
case-claim-forced = [TVINGAD: ärendet hölls av { $holder }]
